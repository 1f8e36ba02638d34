"""Candidate evaluation: extract the subnet, recalibrate BN exactly, measure top-1 / top-5.

Calibration images (and, when they fit in memory, validation images) are decoded once per
search and kept as NDArrays; every result is cached by architecture. On several devices the
subnet lives on all of them: recalibration hands each whole normalisation groups and scoring
splits every batch between them, so the scores equal those on one device.
"""
import logging
import time

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from ..accuracy import cross_entropy, topk_hits
from ..nn import recalibrate_bn

__all__ = ["CandidateEvaluator", "collect_images", "collect_batches"]

logger = logging.getLogger(__name__)


def collect_images(batches, count, ctx=mx.cpu()):
    """The first ``count`` images of an iterable of ``(data, label)`` batches, as one NDArray."""
    parts, seen = [], 0
    for batch in batches:
        data = batch[0] if isinstance(batch, (tuple, list)) else batch
        take = min(count - seen, data.shape[0])
        parts.append(data[:take].as_in_context(ctx))
        seen += take
        if seen >= count:
            break
    if not parts:
        raise ValueError("no images available for BN recalibration")
    if seen < count:
        logger.warning("only %d images available for BN recalibration (asked for %d)",
                       seen, count)
    return nd.concat(*parts, dim=0) if len(parts) > 1 else parts[0]


def collect_batches(batches, max_images=None, cache_mb=2048, ctx=mx.cpu()):
    """Decode validation batches once into memory if they fit in ``cache_mb``.

    Returns a list of ``(data, label)`` when cached, else None (evaluate streams instead).
    """
    kept, seen, nbytes = [], 0, 0
    for data, label in batches:
        if max_images is not None and seen >= max_images:
            break
        if max_images is not None and seen + data.shape[0] > max_images:
            data, label = data[: max_images - seen], label[: max_images - seen]
        nbytes += data.size * 4
        if nbytes > cache_mb * 2 ** 20:
            logger.info("validation images exceed --cache-mb %d; streaming them per candidate",
                        cache_mb)
            return None
        kept.append((data.as_in_context(ctx), label.as_in_context(ctx)))
        seen += data.shape[0]
    return kept


class CandidateEvaluator:
    """Evaluates architectures inside a trained supernet.

    Parameters
    ----------
    supernet : ShuffleNasOneShot
        Trained, initialised supernet.
    calib_images : NDArray
        Fixed images for BN recalibration (decoded once).
    val_batches : list of (NDArray, NDArray) or callable
        Cached validation batches, or a callable returning a fresh iterable of batches.
    ctx : Context or list of Context
        Device(s) to evaluate on; the supernet's parameters must live on the first.
    group_size, batch_size : int
        Recalibration ghost-group size (defines the statistics) and forward batch size.
    hybridize : bool
        Hybridize each extracted subnet for evaluation.
    """

    def __init__(self, supernet, calib_images, val_batches, ctx=mx.cpu(), group_size=32,
                 batch_size=128, hybridize=True):
        self.supernet, self.calib_images, self.val_batches = supernet, calib_images, val_batches
        self.contexts = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]
        self.ctx = self.contexts[0]
        self.group_size, self.batch_size = group_size, batch_size
        self.hybridize = hybridize
        self.cache = {}
        self.seconds = 0.0

    def _val_iter(self):
        return self.val_batches() if callable(self.val_batches) else self.val_batches

    def prepare_subnet(self, arch):
        """Standalone subnet of ``arch`` with recalibrated BN statistics."""
        subnet = self.supernet.get_subnet(arch, ctx=self.contexts)
        recalibrate_bn(subnet, [self.calib_images], ctx=self.contexts,
                       group_size=self.group_size, batch_size=self.batch_size)
        if self.hybridize:
            subnet.hybridize(static_alloc=True)
        return subnet

    def per_image(self, net):
        """Per scoring image: top-1 correct (bool), top-5 correct (bool), cross-entropy loss."""
        hit1, hit5, losses = [], [], []
        for data, label in self._val_iter():
            out = self._forward(net, data)
            y = label.asnumpy().astype(np.int64)
            _, right1, right5 = topk_hits(out, y)
            hit1.append(right1)
            hit5.append(right5)
            losses.append(cross_entropy(out, y))
        if not hit1:
            raise ValueError("the scoring image set is empty")
        return np.concatenate(hit1), np.concatenate(hit5), np.concatenate(losses)

    def _forward(self, net, data):
        """``net(data)`` as float32 numpy, the batch split between the devices in order."""
        if len(self.contexts) == 1:
            return net(data.as_in_context(self.ctx)).astype("float32").asnumpy()
        parts = gluon.utils.split_and_load(data, self.contexts, even_split=False)
        outs = [net(part) for part in parts]     # queued on every device before any waits
        return np.concatenate([o.astype("float32").asnumpy() for o in outs], axis=0)

    def accuracy(self, net):
        hit1, hit5, _ = self.per_image(net)
        return float(hit1.mean()), float(hit5.mean())

    def evaluate(self, arch):
        """``{'top1', 'top5', 'loss'}`` of ``arch`` on the scoring images (cached)."""
        if arch in self.cache:
            return self.cache[arch]
        tic = time.perf_counter()
        subnet = self.prepare_subnet(arch)
        hit1, hit5, losses = self.per_image(subnet)
        self.seconds += time.perf_counter() - tic
        self.cache[arch] = {"top1": float(hit1.mean()), "top5": float(hit5.mean()),
                            "loss": float(losses.mean())}
        return self.cache[arch]
