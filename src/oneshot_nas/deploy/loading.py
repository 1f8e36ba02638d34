"""Getting a fixed subnet into graph form: build it from the registry and trained parameters,
turn a Gluon net into ``(symbol, arg_params, aux_params)``, read and write exported pairs, and
wrap a graph in a ready-to-run ``SymbolBlock``.
"""
import logging
import os
import warnings

import mxnet as mx
from mxnet.gluon import nn

from ..errors import error_line
from ..models import ShuffleNasOneShotFix, get_model, list_models
from ..models.params import load_params_checked
from ..models.zoo import PRESETS
from .errors import DeployError

__all__ = ["SUPERNET_MODELS", "build_subnet", "infer_classes", "net_to_graph", "load_graph",
           "save_graph", "graph_block", "split_params"]

logger = logging.getLogger(__name__)

# Registry names of weight-sharing supernets: plain Blocks without a static graph.
SUPERNET_MODELS = ("ShuffleNas",)
FIX_ARCH_MODEL = "ShuffleNas_fixArch"


def infer_classes(params_file):
    """Number of classes of a saved subnet, read from its classifier weight.

    Parameters
    ----------
    params_file : str
        ``net.save_parameters`` file (structural names such as ``head.1.weight``) or an
        exported ``-0000.params`` file (``arg:...head_conv0_weight``).

    Returns
    -------
    int or None
        None when no classifier weight is recognised.
    """
    saved = _load_nd(params_file)
    for key, value in saved.items():
        name = key.split(":", 1)[-1]
        if name.startswith("head.") and name.endswith(".weight"):
            return int(value.shape[0])
        if "_head_" in name and name.endswith("_weight"):
            return int(value.shape[0])
    return None


def _load_nd(path):
    if not os.path.isfile(path):
        raise DeployError("params file %s does not exist" % path)
    try:
        return mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise DeployError("cannot read params file %s: %s" % (path, error_line(err, 300))) from None


def build_subnet(model=None, block_choices=None, channel_choices=None, params_file=None,
                 ctx=None, **model_kwargs):
    """A fixed subnet from the registry, loaded with trained weights.

    Parameters
    ----------
    model : str, optional
        A preset (``OneShot``, ``OneShot+``, ``OneShot-S+``) or ``ShuffleNas_fixArch``;
        default ``ShuffleNas_fixArch`` when ``block_choices`` are given.
    block_choices, channel_choices : str, optional
        Comma-separated choices (for ``ShuffleNas_fixArch``).
    params_file : str, optional
        ``net.save_parameters`` file of the trained subnet; without it the weights are random
        (Xavier), which is only useful for speed measurements and tests.
    ctx : Context, optional
        Default CPU.
    **model_kwargs
        ``channels_layout``, ``use_se``, ``last_conv_after_pooling``, ``classes``,
        ``input_size``, ``shuffle_method``. ``classes`` defaults to the classifier width found
        in ``params_file``.

    Returns
    -------
    ShuffleNasOneShotFix

    Raises
    ------
    DeployError
        A supernet, an unknown model, a missing or mismatching params file.
    """
    ctx = ctx or mx.cpu()
    if model is None:
        model = FIX_ARCH_MODEL if block_choices else None
    if model is None:
        raise DeployError("no subnet given: pass a model name (%s) or block / channel choices"
                          % ", ".join(sorted(PRESETS)))
    if model in SUPERNET_MODELS:
        raise DeployError("%s is the weight-sharing supernet, which has no static graph to "
                          "export or quantize; pass a fixed subnet (a preset such as OneShot-S+, "
                          "or ShuffleNas_fixArch with block and channel choices)" % model)
    if model not in list_models():
        raise DeployError("unknown model %r; fixed subnets: %s"
                          % (model, ", ".join(m for m in list_models()
                                              if m not in SUPERNET_MODELS)))
    if model == FIX_ARCH_MODEL:
        if not block_choices or not channel_choices:
            raise DeployError("%s needs both block choices and channel choices" % model)
        model_kwargs.update(block_choices=block_choices, channel_choices=channel_choices)
    elif block_choices or channel_choices:
        raise DeployError("model %s has fixed choices; pass block / channel choices with "
                          "model %s instead" % (model, FIX_ARCH_MODEL))
    if params_file is not None and model_kwargs.get("classes") is None:
        classes = infer_classes(params_file)
        if classes is not None:
            model_kwargs["classes"] = classes
    model_kwargs = {k: v for k, v in model_kwargs.items() if v is not None}
    try:
        net = get_model(model, **model_kwargs)
    except ValueError as err:
        raise DeployError(str(err)) from None
    if not isinstance(net, ShuffleNasOneShotFix):
        raise DeployError("%s is not a fixed subnet" % model)
    if params_file is None:
        logger.warning("no params file: %s has random weights", model)
        net.initialize(mx.init.Xavier(), ctx=ctx)
        return net
    _load_parameters(net, params_file, ctx)
    return net


def _load_parameters(net, params_file, ctx):
    _load_nd(params_file)           # a missing or unreadable file: DeployError naming it
    try:
        load_params_checked(net, params_file, "params file", ctx=ctx, what="the subnet",
                            hint="check the model, choices and flags it was trained with",
                            rebuild_constants=True)
    except (AssertionError, mx.base.MXNetError) as err:
        raise DeployError("cannot load %s into the subnet: %s"
                          % (params_file, error_line(err, 300))) from None
    except ValueError as err:
        raise DeployError(str(err)) from None
    logger.info("loaded %s", params_file)


def net_to_graph(net):
    """``(symbol, arg_params, aux_params)`` of an initialised HybridBlock with one input.

    The parameter names are those of the graph (the names ``net.export`` writes).

    Parameters
    ----------
    net : HybridBlock

    Returns
    -------
    (Symbol, dict, dict)
    """
    if not isinstance(net, nn.HybridBlock):
        raise DeployError("%s is not a HybridBlock and has no static graph"
                          % type(net).__name__)
    symbol = net(mx.sym.var("data"))
    if isinstance(symbol, (list, tuple)):
        symbol = symbol[0]
    params = {name: p.data().copyto(mx.cpu()) for name, p in net.collect_params().items()}
    arg_params, aux_params = split_params(symbol, params)
    return symbol, arg_params, aux_params


def split_params(symbol, params):
    """Split a flat ``{name: NDArray}`` (``arg:`` / ``aux:`` prefixes allowed) into the
    ``arg_params`` and ``aux_params`` of ``symbol``; the data input is left out."""
    args, auxs = set(symbol.list_arguments()), set(symbol.list_auxiliary_states())
    arg_params, aux_params = {}, {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key[:4] in ("arg:", "aux:") else key
        if name in auxs:
            aux_params[name] = value
        elif name in args:
            arg_params[name] = value
    return arg_params, aux_params


def load_graph(symbol_file, params_file):
    """Read an exported ``-symbol.json`` / ``-0000.params`` pair.

    Returns
    -------
    (Symbol, dict, dict)

    Raises
    ------
    DeployError
        Missing or unreadable files; parameters missing for some graph argument.
    """
    if not os.path.isfile(symbol_file):
        raise DeployError("symbol file %s does not exist" % symbol_file)
    try:
        symbol = mx.sym.load(symbol_file)
    except mx.base.MXNetError as err:
        raise DeployError("cannot read symbol file %s: %s"
                          % (symbol_file, error_line(err, 300))) from None
    arg_params, aux_params = split_params(symbol, _load_nd(params_file))
    missing = [name for name in symbol.list_arguments() + symbol.list_auxiliary_states()
               if name != "data" and name not in arg_params and name not in aux_params]
    if missing:
        raise DeployError("params file %s lacks %d parameters of %s (first: %s)"
                          % (params_file, len(missing), symbol_file, missing[0]))
    return symbol, arg_params, aux_params


def save_graph(prefix, symbol, arg_params, aux_params):
    """Write ``prefix-symbol.json`` and ``prefix-0000.params`` (``arg:`` / ``aux:`` keys, the
    format of ``HybridBlock.export``). Returns the two paths."""
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    symbol_file, params_file = prefix + "-symbol.json", prefix + "-0000.params"
    symbol.save(symbol_file)
    saved = {"arg:" + k: v for k, v in arg_params.items()}
    saved.update({"aux:" + k: v for k, v in aux_params.items()})
    mx.nd.save(params_file, saved)
    logger.info("saved %s and %s", symbol_file, params_file)
    return symbol_file, params_file


def graph_block(symbol, arg_params, aux_params, ctx=None, hybridize=True):
    """A ``SymbolBlock`` running ``symbol`` with the given parameters.

    Parameters
    ----------
    symbol : Symbol
        One input named ``data``.
    arg_params, aux_params : dict
    ctx : Context, optional
    hybridize : bool
        Hybridize with ``static_alloc`` / ``static_shape`` (what the benchmarks time).

    Returns
    -------
    SymbolBlock
    """
    ctx = ctx or mx.cpu()
    with warnings.catch_warnings():
        # SymbolBlock cannot infer the dtype of ``data`` and says so; it is float32.
        warnings.simplefilter("ignore", UserWarning)
        block = mx.gluon.SymbolBlock(symbol, mx.sym.var("data"))
    values = dict(arg_params)
    values.update(aux_params)
    missing = [name for name in block.collect_params() if name not in values]
    if missing:
        raise DeployError("no value for %d graph parameters (first: %s)"
                          % (len(missing), missing[0]))
    # dtype_source='saved': quantized graphs hold int8 weights next to float32 ones.
    block.collect_params().load_dict(values, ctx=ctx, ignore_extra=True, cast_dtype=True,
                                     dtype_source="saved")
    if hybridize:
        block.hybridize(static_alloc=True, static_shape=True)
    return block
