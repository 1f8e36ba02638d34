"""ONNX export of a fixed subnet graph, and its check against MXNet with onnxruntime.

MXNet 1.9.1's exporter (``mxnet.onnx``) does the op-by-op translation; this module adds what
it lacks for these models (docs/design.md, section 1):

* the channel shuffle's ``Reshape`` with MXNet's special shape values (``0, -4, 2, -1, -2`` and
  ``0, -3, -2``), which the exporter refuses: every special value (0, -1, -2, -3, -4) is
  translated into an ONNX shape computed at run time from ``Shape`` of the input, so the
  model stays valid for any batch size and image size;
* the opset: the exporter stamps the newest opset of the installed onnx although its
  translations target opsets 12-13; here the model is built for the opset asked for (13 by
  default) and the others are refused;
* dynamic batch and image size (named ``batch``, ``height``, ``width``);
* weights as initializers only (the exporter also lists them as graph inputs, which keeps
  onnxruntime from folding constants: about 3x slower at 224 px);
* int8 / MKLDNN-fused graphs and custom operators refused in one line.

The exporter imports ``onnx.mapping``, which onnx removed in 1.19; the ``onnx`` extra pins
onnx 1.18.0, the newest release that has it.
"""
import contextlib
import json
import logging
import os

import numpy as np
import mxnet as mx
from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

from .. import __version__
from .errors import DeployError

__all__ = ["ONNX_OPSETS", "DEFAULT_OPSET", "onnx_modules", "check_exportable", "export_onnx",
           "onnx_session", "run_onnx", "OnnxPredictor", "compare_with_mxnet",
           "relative_difference"]

logger = logging.getLogger(__name__)

# Opsets MXNet 1.9.1's translations target; newer ones changed ops they emit (ReduceMean's
# axes, Split's sizes...), older ones lack ops they use.
ONNX_OPSETS = (12, 13)
DEFAULT_OPSET = 13

# Op name prefixes of graphs ONNX cannot express: MKLDNN subgraphs (fused convolutions) and
# the int8 quantization ops.
_FUSED_PREFIXES = ("_sg_mkldnn_", "_sg_onednn_")
_QUANTIZED_PREFIXES = ("_contrib_quantize", "_contrib_quantized_", "_contrib_requantize",
                       "_contrib_dequantize")
_INT64_MAX = np.iinfo(np.int64).max


def onnx_modules():
    """``(onnx, onnxruntime)``; raises :class:`DeployError` saying what to install."""
    try:
        import onnx  # optional: the onnx extra
        import onnxruntime  # optional: the onnx extra
    except ImportError as err:
        raise DeployError("ONNX export needs onnx and onnxruntime (%s): pip install "
                          "'oneshot_nas[onnx]'" % err) from None
    if not hasattr(onnx, "mapping"):
        raise DeployError("onnx %s has no onnx.mapping, which MXNet 1.9.1's exporter needs; "
                          "install onnx<=1.18 (pip install 'oneshot_nas[onnx]' pins 1.18.0)"
                          % onnx.__version__)
    return onnx, onnxruntime


def _graph_ops(symbol):
    return [(node["op"], node["name"]) for node in json.loads(symbol.tojson())["nodes"]
            if node["op"] != "null"]


def check_exportable(symbol, what="the graph"):
    """Raise :class:`DeployError` for graphs ONNX cannot express (int8, MKLDNN-fused, custom
    operators), naming the first offending op."""
    ops = _graph_ops(symbol)
    for kind, prefixes in (("an int8", _QUANTIZED_PREFIXES), ("an MKLDNN-fused", _FUSED_PREFIXES)):
        for op, name in ops:
            if op.startswith(prefixes):
                raise DeployError("%s is %s graph (op %s at %s), which ONNX cannot express; "
                                  "export the float32 graph instead (the <prefix>-symbol.json "
                                  "without -fused / -quantized, or --model with --params)"
                                  % (what, kind, op, name))
    for op, name in ops:
        if op == "Custom":
            raise DeployError("%s holds a custom operator (%s), which ONNX cannot express; "
                              "export the plain graph (HybridBlock.export)" % (what, name))


# -- the Reshape translation ------------------------------------------------------------------

def _parse_shape(text):
    text = text.strip().strip("()[]")
    return [int(v) for v in text.split(",") if v.strip()]


class _ShapeBuilder:
    """ONNX nodes computing an MXNet ``Reshape`` target shape from ``Shape(data)``."""

    def __init__(self, name, data, initializer):
        from onnx import helper  # optional: the onnx extra
        self.helper, self.name, self.initializer = helper, name, initializer
        self.nodes = [helper.make_node("Shape", [data], [name + "_shape"])]
        self.count = 0

    def _fresh(self, what):
        self.count += 1
        return "%s_%s%d" % (self.name, what, self.count)

    def const(self, values):
        from onnx import TensorProto  # optional: the onnx extra
        tensor = self._fresh("const")
        self.initializer.append(self.helper.make_tensor(tensor, TensorProto.INT64,
                                                        [len(values)], list(values)))
        return tensor

    def dims(self, begin, end):
        out = self._fresh("dims")
        self.nodes.append(self.helper.make_node(
            "Slice", [self.name + "_shape", self.const([begin]), self.const([end])], [out]))
        return out

    def binary(self, op, a, b):
        out = self._fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, [a, b], [out]))
        return out


def reshape_nodes(name, data, spec, initializer):
    """ONNX nodes for MXNet's ``Reshape(data, shape=spec)`` (``reverse=False``), valid for
    any input shape: 0 copies a dimension, -1 is inferred, -2 copies all remaining ones, -3
    merges two, -4 splits one into the next two values (one of them may be -1).

    Returns
    -------
    list of NodeProto
        The last one is the ``Reshape`` writing output ``name``; constants go to
        ``initializer``.
    """
    build = _ShapeBuilder(name, data, initializer)
    pieces, src, i = [], 0, 0
    while i < len(spec):
        value = spec[i]
        if src is None and value in (0, -2, -3, -4):
            raise DeployError("Reshape %s: shape %s uses input dimensions after -2"
                              % (name, tuple(spec)))
        if value == 0:
            pieces.append(build.dims(src, src + 1))
            src += 1
        elif value == -1 or value > 0:
            pieces.append(build.const([value]))
            src = None if src is None else src + 1
        elif value == -2:
            pieces.append(build.dims(src, _INT64_MAX))
            src = None
        elif value == -3:
            pieces.append(build.binary("Mul", build.dims(src, src + 1),
                                       build.dims(src + 1, src + 2)))
            src += 2
        elif value == -4:
            if i + 2 >= len(spec):
                raise DeployError("Reshape %s: -4 needs two values after it in %s"
                                  % (name, tuple(spec)))
            first, second = spec[i + 1], spec[i + 2]
            whole = build.dims(src, src + 1)
            if first == -1:
                pieces += [build.binary("Div", whole, build.const([second])),
                           build.const([second])]
            elif second == -1:
                pieces += [build.const([first]), build.binary("Div", whole, build.const([first]))]
            else:
                pieces += [build.const([first]), build.const([second])]
            src += 1
            i += 2
        else:
            raise DeployError("Reshape %s: unknown shape value %d in %s" % (name, value,
                                                                           tuple(spec)))
        i += 1
    target = name + "_target"
    build.nodes.append(build.helper.make_node("Concat", pieces, [target], axis=0))
    build.nodes.append(build.helper.make_node("Reshape", [data, target], [name], name=name))
    return build.nodes


@contextlib.contextmanager
def _reshape_translation(opset):
    """Install the general Reshape translation in MXNet's converter registry for ``opset``
    (restored afterwards); shapes without special values keep the stock translation."""
    registry = MXNetGraph.registry_
    stock = next(registry[v]["Reshape"] for v in range(opset, 11, -1)
                 if "Reshape" in registry.get(v, {}))

    def convert(node, **kwargs):
        attrs = node.get("attrs", {})
        spec = _parse_shape(attrs.get("shape", "()"))
        if not any(v in (-2, -3, -4) for v in spec):
            return stock(node, **kwargs)
        if str(attrs.get("reverse", "False")).lower() in ("true", "1"):
            raise DeployError("Reshape %s: reverse=True with special values has no ONNX "
                              "translation" % node["name"])
        lookup = kwargs["outputs_lookup"]
        data = lookup[node["inputs"][0][0]][node["inputs"][0][1]].name
        return reshape_nodes(node["name"], data, spec, kwargs["initializer"])

    table = registry.setdefault(opset, {})
    before = table.get("Reshape")
    table["Reshape"] = convert
    try:
        yield
    finally:
        if before is None:
            del table["Reshape"]
        else:
            table["Reshape"] = before


# -- export -------------------------------------------------------------------------------------

def _name_dims(value_info, names):
    for dim, name in zip(value_info.type.tensor_type.shape.dim, names):
        if name is not None:
            dim.ClearField("dim_value")
            dim.dim_param = name


OUTPUT_NAME = "logits"


def _class_count(symbol, params, input_size):
    """The logits' second dimension, from MXNet's shape inference at ``input_size``."""
    shapes = {name: value.shape for name, value in params.items()}
    _, out_shapes, _ = symbol.infer_shape(data=(1, 3, input_size, input_size), **shapes)
    return int(out_shapes[0][1])


def _name_output(graph, classes):
    """Call the graph's one output ``logits`` with the shape ``[batch, classes]`` (MXNet's
    exporter names it after its last layer, e.g. ``..._head_flatten0_flatten0``, with the
    class count 0, which strict shape inference keeps)."""
    if len(graph.output) != 1:
        raise DeployError("the graph must have one output, it has %d" % len(graph.output))
    output = graph.output[0]
    old = output.name
    for node in graph.node:
        node.output[:] = [OUTPUT_NAME if name == old else name for name in node.output]
        node.input[:] = [OUTPUT_NAME if name == old else name for name in node.input]
    output.name = OUTPUT_NAME
    dims = output.type.tensor_type.shape.dim
    del dims[:]
    dims.add().dim_param = "batch"
    dims.add().dim_value = classes


def export_onnx(symbol, arg_params, aux_params, path, opset=DEFAULT_OPSET, input_size=224,
                metadata=None):
    """Write ``symbol`` with its parameters as an ONNX model.

    Parameters
    ----------
    symbol : Symbol
        A float32 graph with one input named ``data`` (N, 3, H, W).
    arg_params, aux_params : dict
    path : str
        The ``.onnx`` file to write (folders are created).
    opset : int
        One of :data:`ONNX_OPSETS`.
    input_size : int
        An image size the graph runs at (the exporter infers output shapes with it); the
        model itself accepts any batch size and image size.
    metadata : dict, optional
        Written into the model's ``metadata_props`` (values as strings).

    Returns
    -------
    onnx.ModelProto
        The model as written, after ``onnx.checker.check_model``.

    Raises
    ------
    DeployError
        Missing onnx packages, an unsupported opset, a graph ONNX cannot express.
    """
    onnx, _ = onnx_modules()
    if opset not in ONNX_OPSETS:
        raise DeployError("unsupported ONNX opset %r; MXNet 1.9.1's translations target %s "
                          "(default %d)" % (opset, " or ".join(map(str, ONNX_OPSETS)),
                                            DEFAULT_OPSET))
    check_exportable(symbol)
    inputs = [n for n in symbol.list_inputs() if n not in arg_params and n not in aux_params]
    if inputs != ["data"]:
        raise DeployError("the graph must have one input named data, it has %s"
                          % (", ".join(inputs) or "none"))
    params = dict(arg_params)
    params.update(aux_params)
    try:
        with _reshape_translation(opset):
            graph = MXNetGraph().create_onnx_graph_proto(
                symbol, params, [(1, 3, input_size, input_size)],
                [onnx.TensorProto.FLOAT], opset_version=opset, dynamic=True,
                dynamic_input_shapes=[(None, 3, None, None)])
    except AttributeError as err:       # "No conversion function registered for op type X"
        raise DeployError("ONNX export failed: %s" % err) from None
    except mx.base.MXNetError as err:
        raise DeployError("the graph cannot run on %dx%d images: %s"
                          % (input_size, input_size, str(err).strip().splitlines()[0])) from None
    # weights are initializers only: as graph inputs they could be overridden at run time,
    # so onnxruntime could not fold them
    constants = {t.name for t in graph.initializer}
    kept = [v for v in graph.input if v.name not in constants]
    del graph.input[:]
    graph.input.extend(kept)
    _name_dims(graph.input[0], ["batch", None, "height", "width"])
    _name_output(graph, _class_count(symbol, params, input_size))
    opset_id = onnx.helper.make_opsetid("", opset)
    model = onnx.helper.make_model(graph, opset_imports=[opset_id], producer_name="oneshot_nas",
                                   producer_version=_version())
    model.ir_version = onnx.helper.find_min_ir_version_for([opset_id])
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise DeployError("the exported model fails onnx.checker: %s"
                          % str(err).strip().splitlines()[0]) from None
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(model.SerializeToString())
    os.replace(tmp, path)
    logger.info("wrote %s (opset %d, %d nodes, %d initializers)", path, opset,
                len(graph.node), len(graph.initializer))
    return model


def _version():
    return __version__


# -- running and checking -----------------------------------------------------------------------

def onnx_session(path, threads=None):
    """An onnxruntime ``InferenceSession`` on the CPU for the model file ``path``.

    Parameters
    ----------
    path : str
    threads : int, optional
        Intra-op threads (default: onnxruntime's choice, one per core).
    """
    _, ort = onnx_modules()
    if not os.path.isfile(path):
        raise DeployError("ONNX model %s does not exist" % path)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3          # errors only: no per-session warnings on stderr
    try:
        return ort.InferenceSession(path, sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail / InvalidGraph types
        raise DeployError("onnxruntime cannot load %s: %s"
                          % (path, str(err).strip().splitlines()[0][:300])) from None


def run_onnx(session, data):
    """The first output of ``session`` for a float32 numpy batch."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(data, dtype=np.float32)})[0]


class OnnxPredictor:
    """Calls an onnxruntime session like a Gluon block: NDArray in, NDArray out."""

    def __init__(self, path, threads=None):
        self.path = path
        self.session = onnx_session(path, threads)

    def __call__(self, data):
        return mx.nd.array(run_onnx(self.session, data.asnumpy()))

    def metadata(self):
        """The model's metadata properties (``{key: value}``, strings), from the session."""
        return dict(self.session.get_modelmeta().custom_metadata_map)


def relative_difference(result, reference):
    """``max |result - reference| / max |reference|``: the error relative to the scale of the
    output (elementwise ratios blow up near zero logits)."""
    result, reference = np.asarray(result, np.float64), np.asarray(reference, np.float64)
    scale = max(float(np.max(np.abs(reference))), np.finfo(np.float32).tiny)
    return float(np.max(np.abs(result - reference))) / scale


def compare_with_mxnet(session, block, batch_sizes=(1, 7), input_sizes=(32, 64), seed=0,
                       data=None):
    """Run onnxruntime and MXNet on the same random images of every batch size and size.

    Parameters
    ----------
    session : onnxruntime.InferenceSession or str
        The session, or the path of an ONNX model.
    block : callable
        The MXNet model (a hybridized ``SymbolBlock``, see :func:`graph_block`).
    batch_sizes, input_sizes : sequence of int
    seed : int
        Seed of the random images (standard normal, like normalised pixels).
    data : dict, optional
        ``{(batch, size): array}`` to use instead of random images.

    Returns
    -------
    list of dict
        ``batch``, ``size``, ``relative`` (see :func:`relative_difference`),
        ``max_abs``, ``top1_agree`` (fraction of images with the same top-1 class).
    """
    if isinstance(session, str):
        session = onnx_session(session)
    rng = np.random.RandomState(seed)
    rows = []
    for size in input_sizes:
        for batch in batch_sizes:
            x = data[(batch, size)] if data else \
                rng.standard_normal((batch, 3, size, size)).astype(np.float32)
            ours = run_onnx(session, x)
            theirs = block(mx.nd.array(x)).asnumpy()
            if ours.shape != theirs.shape:
                raise DeployError("onnxruntime output shape %s differs from MXNet's %s at "
                                  "batch %d, %d px" % (ours.shape, theirs.shape, batch, size))
            rows.append(dict(batch=batch, size=size,
                             relative=relative_difference(ours, theirs),
                             max_abs=float(np.max(np.abs(ours - theirs))),
                             top1_agree=float(np.mean(ours.argmax(1) == theirs.argmax(1)))))
    return rows
