"""NasBatchNorm: channel-sliceable, float16-safe BatchNorm with exact recalibration.

Three behaviours on top of ``nn.BatchNorm``:

* **Channel slicing** (supernet): ``bn(x, active)`` normalises only the first ``active`` channels
  with the first ``active`` entries of gamma / beta / running statistics. Gradients of the other
  entries are exactly zero and their running statistics are never written.
* **float16**: inherits ``nn.BatchNorm.cast``, which keeps parameters and statistics float32.
* **Recalibration**: inside :func:`bn_recalibration` every NasBatchNorm normalises with the
  statistics of fixed groups of ``group_size`` consecutive images (ghost batches, as in training)
  and pools the exact per-channel mean and (biased) variance of everything it saw (Chan et al.'s
  parallel update, in float64). On exit these become the running statistics. Because the groups
  are fixed by the image order and not by how the images arrive, the result does not depend on
  the batch size: :func:`recalibrate_bn` re-chunks any stream of batches so that every forward
  pass holds whole groups. On several devices it hands whole groups to each, in image order,
  so the statistics are those of one device.
* **Several devices**: each device's copy keeps the running statistics of the part of the
  batch it saw; :func:`share_bn_statistics` copies the first device's to the others (the
  trainer does so after every epoch: those are the statistics it validates and saves).
"""
import contextlib
import logging

import numpy as np
import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import nn
from tqdm import tqdm

__all__ = ["NasBatchNorm", "bn_recalibration", "recalibrate_bn", "iter_blocks",
           "sync_bn_statistics", "share_bn_statistics"]

logger = logging.getLogger(__name__)


class _PooledMoments:
    """Per-group means / variances, kept on the device while recalibrating (no host sync per
    batch) and merged exactly in float64 at the end (Chan et al.'s parallel update)."""

    def __init__(self):
        self.parts, self.width = [], None

    def add(self, mean, var, n, width):
        if self.width is None:
            self.width = width
        elif width != self.width:
            raise RuntimeError("recalibration saw %d channels after %d; recalibrate one "
                               "architecture at a time" % (width, self.width))
        self.parts.append((mean, var, n))

    def merge(self):
        """``(count, mean, biased variance)`` of everything added, in float64."""
        count, mean, m2 = 0, None, None
        for batch_mean, batch_var, n in self.parts:
            batch_mean = batch_mean.asnumpy().astype("float64")
            batch_m2 = batch_var.asnumpy().astype("float64") * n
            if count == 0:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            total = count + n
            delta = batch_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + delta * delta * (count * n / total)
            count = total
        return count, mean, (m2 / count if count else None)


_SECOND_OUTPUT = {}     # device type -> True when BatchNorm's second output is 1 / std


def _variance_from_bn_output(second, eps, ctx):
    """BatchNorm(output_mean_var=True) returns the batch variance on some backends and the
    inverse standard deviation on others (MKLDNN and cuDNN); find out once per device."""
    key = ctx.device_type
    if key not in _SECOND_OUTPUT:
        probe = nd.array([0.0, 0.0, 4.0, 4.0], ctx=ctx).reshape((4, 1, 1, 1))   # var 4
        with autograd.train_mode():
            _, _, out = nd.BatchNorm(probe, nd.ones((1,), ctx=ctx), nd.zeros((1,), ctx=ctx),
                                     nd.zeros((1,), ctx=ctx), nd.ones((1,), ctx=ctx),
                                     eps=eps, fix_gamma=False, output_mean_var=True)
        value = float(out.asscalar())
        _SECOND_OUTPUT[key] = abs(value - 0.5) < 1e-3
        if not _SECOND_OUTPUT[key] and abs(value - 4.0) > 1e-3:
            raise RuntimeError("unexpected BatchNorm statistics output %r on %s" % (value, ctx))
    if _SECOND_OUTPUT[key]:
        return 1.0 / nd.square(second) - eps
    return second


class NasBatchNorm(nn.BatchNorm):
    """BatchNorm over ``in_channels`` channels, sliceable to the first ``active`` of them.

    Parameters are those of ``nn.BatchNorm``; ``momentum`` follows MXNet's convention
    (0.9 keeps 90 % of the old running statistic).
    """

    channel_sliced = True

    def __init__(self, in_channels, momentum=0.9, epsilon=1e-5, beta_initializer=None, **kwargs):
        beta_initializer = beta_initializer or mx.init.Constant(1e-4)
        super().__init__(in_channels=in_channels, momentum=momentum, epsilon=epsilon,
                         beta_initializer=beta_initializer, **kwargs)
        self.max_channels = in_channels
        self._moments = None          # _PooledMoments while recalibrating
        self._group_size = None
        self._pending = []            # sliced running stats to write back after backward

    # -- running statistics of sliced paths ---------------------------------------------------
    def sync_statistics(self, ctx=None):
        """Write back running statistics that a sliced training step updated (MXNet updates
        BN statistics in the backward pass, on the sliced copies).

        With ``ctx``, only that device's: a forward pass on one device must not flush the
        copies of another device whose backward pass of the same step has not run yet."""
        if not self._pending:
            return
        keep = []
        with autograd.pause():
            for entry in self._pending:
                full_mean, full_var, part_mean, part_var = entry
                if ctx is not None and full_mean.context != ctx:
                    keep.append(entry)
                    continue
                width = part_mean.shape[0]
                full_mean[:width] = part_mean
                full_var[:width] = part_var
        self._pending = keep

    def hybrid_forward(self, F, x, active=None, gamma=None, beta=None, running_mean=None,
                       running_var=None):
        if self._moments is not None:
            if F is not nd:
                raise RuntimeError("NasBatchNorm recalibration needs an imperative net; "
                                   "use bn_recalibration(), which un-hybridizes it")
            return self._recalibration_forward(x, gamma, beta, running_mean, running_var,
                                               active)
        if F is nd:
            self.sync_statistics(x.context)
        if active is None or active == self.max_channels:
            return F.BatchNorm(x, gamma, beta, running_mean, running_var, name="fwd",
                               **self._kwargs)
        if F is not nd:
            raise RuntimeError("channel-sliced NasBatchNorm runs imperatively only")
        gamma = nd.slice_axis(gamma, axis=0, begin=0, end=active)
        beta = nd.slice_axis(beta, axis=0, begin=0, end=active)
        with autograd.pause():
            part_mean = running_mean[:active].copy()
            part_var = running_var[:active].copy()
        out = nd.BatchNorm(x, gamma, beta, part_mean, part_var, **self._kwargs)
        if autograd.is_training() and not self._kwargs.get("use_global_stats", False):
            self._pending.append((running_mean, running_var, part_mean, part_var))
        return out

    # -- recalibration --------------------------------------------------------------------------
    def _recalibration_forward(self, x, gamma, beta, running_mean, running_var, active):
        width = self.max_channels if active is None else active
        if width != self.max_channels:
            gamma = nd.slice_axis(gamma, axis=0, begin=0, end=width)
            beta = nd.slice_axis(beta, axis=0, begin=0, end=width)
        kwargs = dict(self._kwargs, use_global_stats=False, output_mean_var=True)
        eps = self._kwargs["eps"]
        size = x.shape[0]
        group = self._group_size or size
        outs = []
        for start in range(0, size, group):
            part = x[start:start + group]
            # the fused op normalises with the group's statistics and returns them; its own
            # running-statistics update would only happen in a backward pass, which never runs
            with autograd.train_mode():
                out, mean, second = nd.BatchNorm(part, gamma, beta, nd.zeros_like(gamma),
                                                 nd.ones_like(gamma), **kwargs)
            var = _variance_from_bn_output(second, eps, x.context)
            n = part.shape[0] * part.shape[2] * part.shape[3]
            self._moments.add(mean, var, n, width)
            outs.append(out)
        return outs[0] if len(outs) == 1 else nd.concat(*outs, dim=0)

    def _begin_recalibration(self, group_size=None):
        self.sync_statistics()
        self._moments = _PooledMoments()
        self._group_size = group_size

    def _end_recalibration(self, commit=True):
        moments, self._moments, self._group_size = self._moments, None, None
        if not commit or moments is None or not moments.parts:
            return
        width = moments.width
        _, mean, var = moments.merge()
        for param, value in ((self.running_mean, mean), (self.running_var, var)):
            for arr in param.list_data():
                arr[:width] = nd.array(value.astype("float32"), ctx=arr.context, dtype=arr.dtype)


def iter_blocks(block):
    """All blocks of a tree, depth first, parents before children."""
    yield block
    for child in block._children.values():
        yield from iter_blocks(child)


def sync_bn_statistics(net):
    """Flush pending sliced running-statistics updates of every NasBatchNorm in ``net``."""
    for blk in iter_blocks(net):
        if isinstance(blk, NasBatchNorm):
            blk.sync_statistics()


def share_bn_statistics(net):
    """Copy the BatchNorm running statistics of the first context of ``net``'s parameters to
    its other contexts (after flushing pending sliced updates); returns how many parameters
    were copied. On one context it does nothing."""
    sync_bn_statistics(net)
    copied = 0
    for name, param in net.collect_params().items():
        if not name.endswith(("running_mean", "running_var")):
            continue
        arrays = param.list_data()
        for other in arrays[1:]:
            arrays[0].copyto(other)
            copied += 1
    return copied


DEFAULT_GROUP_SIZE = 32


@contextlib.contextmanager
def bn_recalibration(net, group_size=DEFAULT_GROUP_SIZE):
    """Switch every NasBatchNorm in ``net`` into recalibration mode for the ``with`` body.

    Parameters
    ----------
    net : Block
    group_size : int or None
        Images per normalisation group (ghost batch). Forward passes inside the block should
        hold whole groups (:func:`recalibrate_bn` takes care of it). None: whole batches.

    Hybridized parts run imperatively inside the block and are re-hybridized with their
    original flags afterwards. On a clean exit the pooled statistics replace the running
    statistics; if the body raises, the old statistics are kept.
    """
    bns = [b for b in iter_blocks(net) if isinstance(b, NasBatchNorm)]
    if not bns:
        raise ValueError("%s has no NasBatchNorm layer to recalibrate; build it with "
                         "norm_layer=NasBatchNorm" % type(net).__name__)
    rehybridize = []
    for blk in iter_blocks(net):
        if isinstance(blk, nn.HybridBlock) and getattr(blk, "_active", False):
            rehybridize.append((blk, dict(blk._flags)))
            blk.hybridize(False)
    for bn in bns:
        bn._begin_recalibration(group_size)
    ok = False
    try:
        with autograd.predict_mode():
            yield net
        ok = True
    finally:
        for bn in bns:
            bn._end_recalibration(commit=ok)
        for blk, flags in rehybridize:
            blk.hybridize(True, **flags)


def _rechunk(batches, chunk, ctx, limit=None):
    """Re-batch a stream of image batches into chunks of exactly ``chunk`` images (the last
    one may be shorter), so that group boundaries depend on image order only. With ``limit``
    it yields that many images at most and reads no batch beyond the one that reaches it."""
    pending, count, total = [], 0, 0
    for batch in batches:
        data = batch[0] if isinstance(batch, (tuple, list)) else batch
        data = nd.array(data, ctx=ctx) if isinstance(data, np.ndarray) else data.as_in_context(ctx)
        if limit is not None and total + data.shape[0] > limit:
            data = data[:limit - total]
        if data.shape[0] == 0:
            break
        pending.append(data)
        count += data.shape[0]
        total += data.shape[0]
        while count >= chunk:
            merged = pending[0] if len(pending) == 1 else nd.concat(*pending, dim=0)
            yield merged[:chunk]
            rest = merged[chunk:] if merged.shape[0] > chunk else None
            pending = [rest] if rest is not None else []
            count -= chunk
        if limit is not None and total >= limit:
            break
    if count:
        yield pending[0] if len(pending) == 1 else nd.concat(*pending, dim=0)


def _split_groups(data, group_size, contexts):
    """``data`` cut into consecutive runs of whole groups, one run per context (in context
    order, as even as whole groups allow; a context may get nothing)."""
    if len(contexts) == 1 or not group_size:
        return [(data, contexts[0])]
    groups = -(-data.shape[0] // group_size)
    per, extra = divmod(groups, len(contexts))
    parts, start = [], 0
    for i, ctx in enumerate(contexts):
        stop = min(data.shape[0], start + (per + (i < extra)) * group_size)
        if stop > start:
            parts.append((data[start:stop].as_in_context(ctx), ctx))
        start = stop
    return parts


def recalibrate_bn(net, batches, ctx=None, forward=None, progress=False,
                   group_size=DEFAULT_GROUP_SIZE, batch_size=128, max_images=None):
    """Recalibrate all NasBatchNorm statistics of ``net`` on an iterable of batches.

    Parameters
    ----------
    net : Block
    batches : iterable
        Yields NDArrays / numpy arrays of images, or ``(data, label, ...)`` tuples, of any size.
    ctx : Context or list of Context, optional
        Where to run (default: the first context of the net's parameters). With several, the
        net must live on all of them; every forward pass is cut into whole groups, one run of
        groups per context, so the statistics equal those on one context.
    forward : callable, optional
        ``forward(net, x)``; default ``net(x)``.
    progress : bool
        Show a tqdm progress bar.
    group_size : int
        Images per normalisation group; the statistics depend on it and on the image order,
        not on the size of the incoming batches, on ``batch_size`` or on the contexts.
    batch_size : int
        Images per forward pass (rounded up to a multiple of ``group_size``): speed and memory.
        On several contexts, images per round over all of them.
    max_images : int, optional
        Use this many images at most: no batch is read after the one that reaches it.

    Returns
    -------
    int
        Number of images used.
    """
    if ctx is None:
        ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    contexts = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]
    if not group_size and len(contexts) > 1:
        # whole batches define the statistics: they cannot be cut between contexts
        contexts = contexts[:1]
    forward = forward or (lambda model, data: model(data))
    chunk = -(-batch_size // group_size) * group_size if group_size else batch_size
    seen = 0
    iterator = _rechunk(batches, chunk, contexts[0], limit=max_images)
    if progress:
        iterator = tqdm(iterator, desc="BN recalibration", unit="batch", leave=False)
    with bn_recalibration(net, group_size):
        for data in iterator:
            # in image order: the pooled moments see the groups as on one context
            for part, _ in _split_groups(data, group_size, contexts):
                forward(net, part)
            seen += data.shape[0]
    logger.debug("BN recalibration used %d images in groups of %s", seen, group_size)
    return seen
