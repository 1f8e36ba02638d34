"""Accuracy and speed of the deployed variants of a subnet: float32, MKLDNN-fused float32,
float16 (where the device runs it) and int8.

All variants are ``SymbolBlock``s hybridized with ``static_alloc`` / ``static_shape``; the
float32 one runs the exported graph as it is (MXNet's hybridized graph is not fused), so
its speed is the speed of the plain hybridized subnet.
"""
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import mxnet as mx
from mxnet.contrib import amp
from tqdm import tqdm

from ..accuracy import topk_hits
from ..errors import error_line
from .errors import DeployError
from .folding import fold_batchnorm
from .loading import graph_block
from .quantize import fuse_graph

__all__ = ["VARIANTS", "VariantResult", "accuracy", "float16_support", "float16_block",
           "seconds_per_call", "measure_throughput", "measure_latency", "evaluate_variants",
           "results_table", "results_json"]

logger = logging.getLogger(__name__)

VARIANTS = ("fp32", "fp32-fused", "fp32-folded", "float16", "int8")
NOT_AVAILABLE = "n/a"


@dataclass
class VariantResult:
    """Accuracy and speed of one variant; ``None`` where not measured, ``note`` says why."""

    name: str
    top1: float = None
    top5: float = None
    num_images: int = 0
    agreement: float = None       # fraction of images with the same top-1 class as fp32
    throughput: float = None      # images / s at the throughput batch size (median)
    latency_ms: float = None      # ms per batch-1 forward pass (median)
    note: str = ""
    predictions: list = field(default=None, repr=False)


def _as_data(batch):
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def accuracy(block, batches, ctx=None, dtype="float32", progress=False, desc="evaluating"):
    """Top-1 / top-5 accuracy of ``block`` over ``(data, label)`` batches.

    Parameters
    ----------
    block : callable
        NDArray images -> class scores.
    batches : iterable
        Yields ``(data, label)``.
    ctx : Context, optional
        Default CPU.
    dtype : str
        Images are cast to it (``'float16'`` for the half-precision variant).
    progress : bool
        tqdm progress bar.
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict
        ``top1``, ``top5``, ``num_images`` and ``predictions`` (top-1 class per image, in
        order).
    """
    ctx = ctx or mx.cpu()
    iterator = batches
    if progress:
        total = len(batches) if hasattr(batches, "__len__") else None
        iterator = tqdm(batches, total=total, desc=desc, unit="batch", leave=False)
    hits1 = hits5 = seen = 0
    predictions = []
    for batch in iterator:
        data, label = _as_data(batch)
        if label is None:
            raise DeployError("accuracy needs labelled batches")
        data = data.as_in_context(ctx).astype(dtype, copy=False)
        scores = block(data).astype("float32").asnumpy()
        label = label.asnumpy().astype(np.int64).reshape(-1)
        predicted, hit1, hit5 = topk_hits(scores, label)
        predictions.extend(predicted.tolist())
        hits1 += int(hit1.sum())
        hits5 += int(hit5.sum())
        seen += label.shape[0]
    if seen == 0:
        raise DeployError("the validation data yielded no image")
    return dict(top1=hits1 / seen, top5=hits5 / seen, num_images=seen, predictions=predictions)


def float16_support(ctx=None):
    """Whether ``ctx`` runs float16 convolutions.

    MXNet 1.9's CPU build has no float16 convolution ("FP16 gemm on cpu not implemented").

    Returns
    -------
    (bool, str)
        Support and, when unsupported, a short reason for tables (``'n/a (needs GPU)'``).
    """
    ctx = ctx or mx.cpu()
    try:
        x = mx.nd.ones((1, 2, 4, 4), ctx=ctx, dtype="float16")
        w = mx.nd.ones((2, 2, 3, 3), ctx=ctx, dtype="float16")
        mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=2, no_bias=True).asnumpy()
    except mx.base.MXNetError as err:
        logger.info("float16 convolution not available on %s: %s", ctx, error_line(err, 300))
        reason = "needs GPU" if ctx.device_type == "cpu" else error_line(err, 300)[:60]
        return False, "%s (%s)" % (NOT_AVAILABLE, reason)
    return True, ""


def float16_block(symbol, arg_params, aux_params, ctx=None):
    """The graph in float16 with MXNet AMP (ops that need float32, such as BatchNorm
    statistics and softmax, stay float32). Feed it float16 images."""
    sym16, arg16, aux16 = amp.convert_model(symbol, arg_params, aux_params,
                                            target_dtype="float16", cast_optional_params=True)
    block = graph_block(sym16, arg16, aux16, ctx=ctx, hybridize=False)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def seconds_per_call(block, data, min_seconds):
    """Mean seconds per forward pass of ``block`` on ``data``, calling it back to back until
    ``min_seconds`` have passed (one timed round, no warm-up)."""
    calls, start = 0, time.perf_counter()
    while True:
        block(data).wait_to_read()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def _timed_runs(block, data, repeats, min_seconds):
    """Median seconds per forward pass over ``repeats`` timed rounds (after warm-up)."""
    for _ in range(2):
        block(data).wait_to_read()
    return statistics.median(seconds_per_call(block, data, min_seconds) for _ in range(repeats))


def measure_throughput(block, input_size, batch_size=32, ctx=None, dtype="float32", repeats=5,
                       min_seconds=1.0):
    """Images per second of ``block`` on random images (median of ``repeats`` rounds).

    Parameters
    ----------
    block : callable
    input_size : int
    batch_size : int
    ctx : Context, optional
    dtype : str
    repeats : int
        Timed rounds; the median is reported.
    min_seconds : float
        Each round repeats the forward pass until this much time has passed.

    Returns
    -------
    float
    """
    ctx = ctx or mx.cpu()
    data = mx.nd.random.uniform(-1, 1, shape=(batch_size, 3, input_size, input_size),
                                ctx=ctx).astype(dtype)
    return batch_size / _timed_runs(block, data, repeats, min_seconds)


def measure_latency(block, input_size, ctx=None, dtype="float32", repeats=5, min_seconds=0.5):
    """Milliseconds per single-image forward pass (median of ``repeats`` rounds)."""
    ctx = ctx or mx.cpu()
    data = mx.nd.random.uniform(-1, 1, shape=(1, 3, input_size, input_size),
                                ctx=ctx).astype(dtype)
    return 1000.0 * _timed_runs(block, data, repeats, min_seconds)


def evaluate_variants(graphs, input_size, val_batches=None, ctx=None, variants=VARIANTS,
                      speed=True, batch_size=32, repeats=5, min_seconds=1.0, progress=False):
    """Accuracy and speed of each deployment variant.

    Parameters
    ----------
    graphs : dict
        ``'fp32'`` -> ``(symbol, arg_params, aux_params)`` of the exported subnet, and
        optionally ``'int8'`` (or any ``'int8-<name>'``) -> a quantized graph and
        ``'fp32-folded'`` -> the BN-folded graph (built from ``'fp32'`` when missing).
    input_size : int
    val_batches : iterable, optional
        ``(data, label)`` batches; re-iterated once per variant. None: no accuracy.
    ctx : Context, optional
    variants : sequence of str
        Which of ``fp32``, ``fp32-fused``, ``fp32-folded``, ``float16`` and the int8 keys of
        ``graphs`` to run.
    speed : bool
        Measure throughput (batch ``batch_size``) and batch-1 latency.
    batch_size, repeats, min_seconds
        See :func:`measure_throughput`.
    progress : bool

    Returns
    -------
    list of VariantResult
    """
    ctx = ctx or mx.cpu()
    symbol, arg_params, aux_params = graphs["fp32"]
    results = []
    for name in variants:
        result = VariantResult(name)
        dtype = "float32"
        if name == "fp32":
            block = graph_block(symbol, arg_params, aux_params, ctx=ctx)
        elif name == "fp32-fused":
            if ctx.device_type != "cpu":
                result.note = "%s (MKLDNN is CPU only)" % NOT_AVAILABLE
                results.append(result)
                continue
            block = graph_block(fuse_graph(symbol), arg_params, aux_params, ctx=ctx)
        elif name == "fp32-folded":
            folded = graphs.get(name) or fold_batchnorm(symbol, arg_params, aux_params)
            block = graph_block(*folded, ctx=ctx)
        elif name == "float16":
            ok, reason = float16_support(ctx)
            if not ok:
                result.note = reason
                results.append(result)
                continue
            block, dtype = float16_block(symbol, arg_params, aux_params, ctx=ctx), "float16"
        elif name in graphs:
            block = graph_block(*graphs[name], ctx=ctx)
        else:
            raise DeployError("no graph for variant %r" % name)
        if val_batches is not None:
            acc = accuracy(block, val_batches, ctx=ctx, dtype=dtype, progress=progress,
                           desc=name)
            result.top1, result.top5 = acc["top1"], acc["top5"]
            result.num_images, result.predictions = acc["num_images"], acc["predictions"]
            logger.info("%s: top-1 %.4f, top-5 %.4f on %d images", name, result.top1,
                        result.top5, result.num_images)
        if speed:
            result.throughput = measure_throughput(block, input_size, batch_size, ctx, dtype,
                                                   repeats, min_seconds)
            result.latency_ms = measure_latency(block, input_size, ctx, dtype, repeats,
                                                min_seconds / 2)
            logger.info("%s: %.1f img/s at batch %d, %.2f ms at batch 1", name,
                        result.throughput, batch_size, result.latency_ms)
        results.append(result)
    reference = next((r.predictions for r in results if r.name == "fp32" and r.predictions),
                     None)
    if reference is not None:
        for r in results:
            if r.predictions is not None and len(r.predictions) == len(reference):
                r.agreement = float(np.mean(np.asarray(r.predictions) == np.asarray(reference)))
    return results


# Variant -> precision of its MicroNet score.
_SCORE_KEYS = {"fp32": "float32", "fp32-fused": "float32", "fp32-folded": "float32",
               "float16": "float16"}


def _fmt(value, pattern):
    return pattern % value if value is not None else "-"


def results_table(results, batch_size=32, micronet_scores=None):
    """The results as a markdown table (accuracy in %, speed relative to ``fp32``).

    Parameters
    ----------
    results : list of VariantResult
    batch_size : int
        Throughput batch size, for the header.
    micronet_scores : dict, optional
        ``{'float32': {'score': s}, 'float16': ..., 'int8': ...}``
        (:meth:`~oneshot_nas.profiling.MicroNetProfile.scores`): a column beside them.

    Returns
    -------
    str
    """
    base = next((r.throughput for r in results if r.name == "fp32" and r.throughput), None)
    header = ["variant", "top-1 %", "top-5 %", "same top-1 as fp32 %",
              "img/s (batch %d)" % batch_size, "vs fp32", "latency ms (batch 1)"]
    width = len(header)
    if micronet_scores:
        header.append("MicroNet score")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        if r.note:
            cells = [r.name, r.note] + ["-"] * (width - 2)
        else:
            ratio = (r.throughput / base) if (base and r.throughput) else None
            cells = [r.name, _fmt(100 * r.top1 if r.top1 is not None else None, "%.2f"),
                     _fmt(100 * r.top5 if r.top5 is not None else None, "%.2f"),
                     _fmt(100 * r.agreement if r.agreement is not None else None, "%.2f"),
                     _fmt(r.throughput, "%.1f"), _fmt(ratio, "%.2fx"),
                     _fmt(r.latency_ms, "%.2f")]
        if micronet_scores:
            key = _SCORE_KEYS.get(r.name, "int8" if r.name.startswith("int8") else None)
            score = micronet_scores.get(key, {}).get("score") if key else None
            cells.append(_fmt(score, "%.3f"))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def results_json(results, **extra):
    """JSON text of the results (without per-image predictions) plus ``extra`` fields."""
    rows = []
    for r in results:
        row = asdict(r)
        row.pop("predictions")
        rows.append(row)
    return json.dumps(dict(extra, variants=rows), indent=2, sort_keys=True)
