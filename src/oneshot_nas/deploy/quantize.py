"""MKLDNN (oneDNN) fusion and int8 quantization of an exported fixed subnet.

``quantize_graph`` wraps ``mxnet.contrib.quantization.quantize_model_mkldnn`` with what this
architecture needs (docs/design.md, section 1):

* ``quantized_dtype='int8'`` by default. With ``'auto'`` the quantized hard-swish multiply
  receives a uint8 and an int8 input and the graph fails at inference;
  ``'uint8'`` cannot hold the negative activations. Every quantized graph is therefore run
  once on a calibration batch before it is returned, and a failure is reported with what to
  use instead. (Since the hard-swish multiply stays float32 by default, see ``FLOAT_OPS``,
  ``'auto'`` happens to run too.)
* Entropy calibration with int8 makes symmetric thresholds ``(-t, t)`` also for ReLU outputs,
  which the fused conv + ReLU kernels emit as uint8; the next convolution then rejects its
  input ("Expect int8 when data_min < 0"). For layers whose calibration outputs are never
  negative the lower threshold is set to 0, as the naive calibration and ``'auto'`` do.
* The hard-swish multiply ``x * hard_sigmoid(x)`` stays float32 (``FLOAT_OPS``): MXNet's
  int8 elementwise multiply cost the trained OneShot-S+ 5-6 points of top-1 on digits; in
  float32 the int8 graph matches the float32 accuracy.
* MKLDNN computes infinite calibration thresholds from BN running variances of 0
  (channels that were constant on the training data). With eps = 1e-5 this build did not
  reproduce it; as a guard such variances are raised to a tiny floor, which leaves such a
  channel's output (its input equals its mean) unchanged, and a warning names the count.
"""
import json
import logging

import numpy as np
import mxnet as mx
from mxnet.contrib import quantization as mxq
from tqdm import tqdm

from ..errors import error_line
from .errors import DeployError
from .loading import graph_block

__all__ = ["CALIB_MODES", "QUANTIZED_DTYPES", "FLOAT_OPS", "fuse_graph", "first_conv_name",
           "quantize_graph", "calibration_iter", "quantized_prefix", "fix_zero_variance"]

logger = logging.getLogger(__name__)

CALIB_MODES = ("none", "naive", "entropy")
QUANTIZED_DTYPES = ("int8", "uint8", "auto")
MKLDNN_BACKEND = "MKLDNN"
MKLDNN_QUANTIZE_BACKEND = "MKLDNN_QUANTIZE"
_VARIANCE_FLOOR = 1e-6
# Ops kept in float32 by default: the hard-swish product x * hard_sigmoid(x) is the only
# elemwise_mul of these subnets (the SE gate is a broadcast_mul, never quantized).
FLOAT_OPS = ("elemwise_mul",)


def _standalone_relu(symbol):
    """The same graph with every ``Activation(relu)`` as the standalone ``relu`` op, which the
    MKLDNN partitioner does not merge into the preceding convolution."""
    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        if node["op"] == "Activation" and node.get("attrs", {}).get("act_type") == "relu":
            node["op"], node["attrs"] = "relu", {}
    return mx.sym.load_json(json.dumps(graph))


def fuse_graph(symbol, fuse_relu=False):
    """The MKLDNN-fused float32 graph (convolution + BN, and + ReLU with ``fuse_relu``).

    Parameters
    ----------
    symbol : Symbol
    fuse_relu : bool
        Also fuse ReLU into the convolutions. Off by default: on the odd widths of searched
        subnets (e.g. 51 or 57 channels) MXNet 1.9's fused 1x1 conv + BN + ReLU feeding a
        depthwise convolution runs several times slower than the unfused ops (profiled on
        OneShot-S+: 65 ms instead of 9 ms for one layer at batch 32, 224 px), which makes the
        whole fused graph slower than the plain one. The ReLU then runs as a separate op.

    Returns
    -------
    Symbol
        Same parameters as ``symbol``; the same outputs up to float rounding.
    """
    if not fuse_relu:
        symbol = _standalone_relu(symbol)
    return symbol.get_backend_symbol(MKLDNN_BACKEND)


def first_conv_name(symbol):
    """Name of the first convolution reading the ``data`` input in the graph that
    ``quantize_model_mkldnn`` partitions (the name to exclude from quantization)."""
    nodes = json.loads(symbol.get_backend_symbol(MKLDNN_QUANTIZE_BACKEND).tojson())["nodes"]
    data_ids = {i for i, n in enumerate(nodes) if n["op"] == "null" and n["name"] == "data"}
    for node in nodes:
        if node["op"] in ("Convolution", "_sg_mkldnn_conv") and \
                any(src in data_ids for src, _, _ in node["inputs"]):
            return node["name"]
    raise DeployError("the graph has no convolution reading its data input")


def quantized_prefix(prefix, calib_mode, exclude_first_conv=False, quantized_dtype="int8"):
    """``<prefix>-quantized-<mode>`` (plus ``-nofirstconv`` / the dtype when not int8): the
    file prefix of a quantized graph, so that graphs of different settings sit side by side."""
    name = "%s-quantized-%s" % (prefix, calib_mode)
    if exclude_first_conv:
        name += "-nofirstconv"
    if quantized_dtype != "int8":
        name += "-" + quantized_dtype
    return name


def fix_zero_variance(aux_params, floor=_VARIANCE_FLOOR):
    """Copy of ``aux_params`` with BN running variances below ``floor`` raised to it.

    Returns
    -------
    (dict, int)
        The parameters and the number of channels changed.
    """
    fixed, changed = {}, 0
    for name, value in aux_params.items():
        if name.endswith("running_var"):
            arr = value.asnumpy()
            low = arr < floor
            if low.any():
                changed += int(low.sum())
                value = mx.nd.array(np.where(low, floor, arr), dtype=value.dtype)
        fixed[name] = value
    return fixed, changed


def calibration_iter(batches, num_batches, progress=False):
    """A ``DataIter`` over the first ``num_batches`` image batches of ``batches``.

    Parameters
    ----------
    batches : iterable
        Yields NDArrays / numpy arrays of images or ``(data, label, ...)`` tuples.
    num_batches : int
    progress : bool
        tqdm bar while reading.

    Returns
    -------
    (mx.io.NDArrayIter, int)
        The iterator (``data`` only, batches of the incoming size) and the number of images.
    """
    if num_batches < 1:
        raise DeployError("need at least one calibration batch, got %d" % num_batches)
    iterator = iter(batches)
    if progress:
        iterator = tqdm(iterator, total=num_batches, desc="calibration data", unit="batch",
                        leave=False)
    arrays, batch_size = [], None
    for batch in iterator:
        data = batch[0] if isinstance(batch, (tuple, list)) else batch
        data = data.asnumpy() if isinstance(data, mx.nd.NDArray) else np.asarray(data)
        batch_size = batch_size or data.shape[0]
        arrays.append(data.astype("float32"))
        if len(arrays) >= num_batches:
            break
    if not arrays:
        raise DeployError("the calibration data yielded no batch")
    data = np.concatenate(arrays)
    batch_size = min(batch_size, data.shape[0])
    return mx.io.NDArrayIter(data, batch_size=batch_size, last_batch_handle="discard"), \
        data.shape[0] // batch_size * batch_size


def _calib_ranges(symbol):
    """Node name -> (min_calib_range, max_calib_range) of a calibrated quantized graph."""
    ranges = {}
    for node in json.loads(symbol.tojson())["nodes"]:
        attrs = node.get("attrs", {})
        if "min_calib_range" in attrs and "max_calib_range" in attrs:
            ranges[node["name"]] = (float(attrs["min_calib_range"]),
                                    float(attrs["max_calib_range"]))
    return ranges


def _clip_nonnegative(symbol, observed):
    """Set ``min_calib_range`` to 0 on nodes whose observed outputs were never negative."""
    graph = json.loads(symbol.tojson())
    changed = 0
    for node in graph["nodes"]:
        attrs = node.get("attrs", {})
        seen = observed.get(node["name"])
        if seen is None or "min_calib_range" not in attrs:
            continue
        if seen[0] >= 0.0 and float(attrs["min_calib_range"]) < 0.0:
            attrs["min_calib_range"] = "0.000000"
            changed += 1
    logger.debug("entropy thresholds: lower bound set to 0 on %d non-negative layers", changed)
    return mx.sym.load_json(json.dumps(graph)), changed


def _quantize(symbol, arg_params, aux_params, calib_mode, calib_data, excluded, dtype, ctx,
              excluded_ops=()):
    if calib_data is not None:
        calib_data.reset()
    return mxq.quantize_model_mkldnn(
        symbol, arg_params, aux_params, ctx=ctx, label_names=None,
        excluded_sym_names=list(excluded), excluded_op_names=list(excluded_ops),
        calib_mode=calib_mode,
        calib_data=calib_data if calib_mode != "none" else None,
        quantized_dtype=dtype, quantize_mode="smart")


def _smoke_test(qsym, qarg, qaux, sample, quantized_dtype, ctx):
    """Run the quantized graph once; translate MXNet's failure into a DeployError."""
    try:
        out = graph_block(qsym, qarg, qaux, ctx=ctx, hybridize=False)(sample)
        values = out.asnumpy()
    except mx.base.MXNetError as err:
        hint = {"auto": "; use --quantized-dtype int8 ('auto' feeds uint8 and int8 tensors "
                        "to the same quantized op)",
                "uint8": "; use --quantized-dtype int8 (uint8 cannot hold the negative "
                         "activations of this network)"}.get(quantized_dtype, "")
        raise DeployError("the %s quantized graph fails at inference: %s%s"
                          % (quantized_dtype, error_line(err, 300), hint)) from None
    if not np.isfinite(values).all():
        raise DeployError("the quantized graph produces non-finite outputs; check the BN "
                          "statistics of the model and the calibration data")


def quantize_graph(symbol, arg_params, aux_params, calib_mode="naive", calib_data=None,
                   exclude_first_conv=False, quantized_dtype="int8", excluded_sym_names=(),
                   excluded_op_names=FLOAT_OPS, ctx=None, sample=None):
    """Quantize a float32 subnet graph with MKLDNN.

    Parameters
    ----------
    symbol : Symbol
        The exported float32 subnet (not the fused one: fusion happens inside).
    arg_params, aux_params : dict
    calib_mode : {'none', 'naive', 'entropy'}
        ``none``: ranges computed at run time (slower); ``naive``: min / max of the
        calibration outputs; ``entropy``: KL-divergence thresholds.
    calib_data : mx.io.DataIter, optional
        Calibration images (:func:`calibration_iter`); required unless ``calib_mode='none'``.
    exclude_first_conv : bool
        Keep the first convolution (the one reading the image) in float32.
    quantized_dtype : {'int8', 'uint8', 'auto'}
    excluded_sym_names : sequence of str
        More node names (of the MKLDNN_QUANTIZE graph) to keep in float32.
    excluded_op_names : sequence of str
        Op types to keep in float32; default :data:`FLOAT_OPS` (the hard-swish multiply).
    ctx : Context, optional
        Must be a CPU context.
    sample : NDArray, optional
        A batch for the final check run; default the first calibration batch (or zeros).

    Returns
    -------
    (Symbol, dict, dict)
        The quantized graph and its parameters, ready for :func:`~.loading.graph_block` or
        :func:`~.loading.save_graph`.

    Raises
    ------
    DeployError
        An unsupported mode or dtype, missing calibration data, or a graph that fails to run.
    """
    ctx = ctx or mx.cpu()
    if calib_mode not in CALIB_MODES:
        raise DeployError("unsupported calibration mode %r; choose one of %s"
                          % (calib_mode, ", ".join(CALIB_MODES)))
    if quantized_dtype not in QUANTIZED_DTYPES:
        raise DeployError("unsupported quantized dtype %r; choose one of %s (int8 recommended)"
                          % (quantized_dtype, ", ".join(QUANTIZED_DTYPES)))
    if ctx.device_type != "cpu":
        raise DeployError("MKLDNN quantization runs on CPU only, got context %s" % ctx)
    if calib_mode != "none" and calib_data is None:
        raise DeployError("calibration mode %r needs calibration data" % calib_mode)
    aux_params, changed = fix_zero_variance(aux_params)
    if changed:
        logger.warning("%d BN channels have running variance 0; raised to %g for calibration",
                       changed, _VARIANCE_FLOOR)
    excluded = list(excluded_sym_names)
    if exclude_first_conv:
        excluded.append(first_conv_name(symbol))
    logger.info("quantizing to %s, calibration %s%s", quantized_dtype, calib_mode,
                ", first conv kept in float32" if exclude_first_conv else "")
    qsym, qarg, qaux = _quantize(symbol, arg_params, aux_params, calib_mode, calib_data,
                                 excluded, quantized_dtype, ctx, excluded_op_names)
    if calib_mode == "entropy" and quantized_dtype == "int8":
        # The naive pass records the observed output range of every calibrated layer.
        naive_sym, _, _ = _quantize(symbol, arg_params, aux_params, "naive", calib_data,
                                    excluded, quantized_dtype, ctx, excluded_op_names)
        qsym, _ = _clip_nonnegative(qsym, _calib_ranges(naive_sym))
    if sample is None:
        if calib_data is not None:
            calib_data.reset()
            sample = calib_data.next().data[0]
        else:
            sample = mx.nd.zeros((1, 3, 32, 32))
    _smoke_test(qsym, qarg, qaux, sample.as_in_context(ctx), quantized_dtype, ctx)
    return qsym, qarg, qaux
