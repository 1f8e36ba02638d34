"""FLOPs and parameters of a symbol graph by the counting rules of docs/design.md, section 5.

Rules (per image, batch independent):

* Convolution: ``prod(output spatial) * prod(weight shape)``, plus the output size with a bias.
* FullyConnected: ``prod(weight shape)``, plus the output size with a bias.
* Pooling: global pooling counts its input size, windowed pooling ``output size * kernel area``.
* Unless ``relu_bn=False`` (``-norelubn``): ReLU counts its output size, BatchNorm three times
  its output size.
* Hard-swish / hard-sigmoid pieces and every other op are not counted (only the MicroNet
  profile counts them).
* Params: every argument of the graph except the data inputs; BN running statistics are
  auxiliary states and do not count.
"""
import logging
from collections import Counter
from dataclasses import dataclass, field

import mxnet as mx

from ..models import ShuffleNasOneShotFix
from .graph import Graph, _prod, attr, attr_bool, attr_tuple, load_symbol, parse_data_shapes

__all__ = ["LayerCount", "SymbolCount", "count_symbol", "count_symbol_file", "build_symbol",
           "MODEL_CONFIG_KEYS", "DEFAULT_MODEL_CONFIG"]

log = logging.getLogger(__name__)

# The model configuration that changes FLOPs / params; trainer, search, lookup table and CLI
# pass exactly these keys.
DEFAULT_MODEL_CONFIG = dict(channels_layout="OneShot", use_se=False,
                            last_conv_after_pooling=False, input_size=224, classes=1000)
MODEL_CONFIG_KEYS = tuple(DEFAULT_MODEL_CONFIG)

# Ops that move or reshape data only: never counted, and not worth a debug line.
_FREE_OPS = {"Reshape", "SwapAxis", "transpose", "slice_axis", "slice", "Concat", "concat",
             "Flatten", "flatten", "Dropout", "identity", "_copy", "split", "SliceChannel",
             "expand_dims", "squeeze", "BlockGrad", "stop_gradient", "Cast", "amp_cast"}


@dataclass
class LayerCount:
    """One counted operator: its FLOPs under the chosen rules and its own parameters."""

    name: str
    op: str
    output_shape: tuple
    flops: int
    params: int


@dataclass
class SymbolCount:
    """Result of :func:`count_symbol`.

    Attributes
    ----------
    flops : int
        FLOPs per image.
    params : int
        Parameters (every argument except the data inputs).
    relu_bn : bool
        Whether ReLU and BatchNorm were counted.
    layers : list of LayerCount
        Counted operators in graph order.
    uncounted : dict
        Op name -> number of nodes that the rules do not count.
    """

    flops: int
    params: int
    relu_bn: bool
    layers: list = field(default_factory=list)
    uncounted: dict = field(default_factory=dict)

    @property
    def mflops(self):
        return self.flops / 1e6

    @property
    def mparams(self):
        return self.params / 1e6

    def to_dict(self, per_layer=False):
        """JSON-ready summary: ``flops_m``, ``params_m``, ``flops``, ``params``, ``relu_bn``."""
        out = dict(flops_m=round(self.mflops, 6), params_m=round(self.mparams, 6),
                   flops=int(self.flops), params=int(self.params), relu_bn=self.relu_bn)
        if per_layer:
            out["layers"] = [dict(name=l.name, op=l.op, output_shape=list(l.output_shape),
                                  flops=int(l.flops), params=int(l.params)) for l in self.layers]
        return out

    def per_layer_table(self):
        """Markdown table of the counted layers with a total row."""
        lines = ["| layer | op | output shape | MFLOPs | params |", "|---|---|---|---:|---:|"]
        for l in self.layers:
            lines.append("| %s | %s | %s | %.6f | %d |" % (
                l.name, l.op, "x".join(str(d) for d in l.output_shape), l.flops / 1e6, l.params))
        lines.append("| total | | | %.6f | %d |" % (self.mflops, self.params))
        return "\n".join(lines)


def count_graph(graph, relu_bn=True):
    """Count a :class:`~oneshot_nas.profiling.graph.Graph` (see :func:`count_symbol`)."""
    layers, uncounted = [], Counter()
    total = 0
    for node_id, node in graph.op_nodes():
        op = node["op"]
        flops = None
        if op in ("Convolution", "FullyConnected"):
            out = graph.output_shape(node_id)
            weight = graph.input_shape(node, 1)
            if op == "Convolution":
                flops = _prod(out[2:]) * _prod(weight)
            else:
                flops = _prod(weight)
            if not attr_bool(node, "no_bias"):
                flops += _prod(out[1:])
        elif op == "Pooling":
            out = graph.output_shape(node_id)
            if attr_bool(node, "global_pool"):
                flops = _prod(graph.input_shape(node, 0)[1:])
            else:
                flops = _prod(out[1:]) * _prod(attr_tuple(node, "kernel"))
        elif op in ("Activation", "relu") and (op == "relu" or attr(node, "act_type") == "relu"):
            if relu_bn:
                flops = _prod(graph.output_shape(node_id)[1:])
        elif op == "BatchNorm":
            if relu_bn:
                flops = 3 * _prod(graph.output_shape(node_id)[1:])
        elif op not in _FREE_OPS:
            uncounted[op] += 1
        if flops is None:
            continue
        total += flops
        layers.append(LayerCount(node["name"], op, tuple(graph.output_shape(node_id)), flops,
                                 graph.node_params(node)))
    if uncounted:
        log.debug("ops not counted by the counting rules: %s", dict(uncounted))
    return SymbolCount(total, graph.total_params(), relu_bn, layers, dict(uncounted))


def count_symbol(symbol, data_shapes=None, relu_bn=True):
    """FLOPs and parameters of a symbol graph, with one shape inference for the whole graph.

    Parameters
    ----------
    symbol : mxnet.symbol.Symbol
        For example the ``-symbol.json`` written by ``HybridBlock.export``.
    data_shapes : dict or str or sequence of str, optional
        Input shapes, ``{'data': (1, 3, 224, 224)}`` or ``'data,1,3,224,224'``; by default one
        input ``data`` of shape ``(1, 3, 224, 224)``.
    relu_bn : bool
        Count ReLU and BatchNorm (``False`` is ``-norelubn``, the constraint convention).

    Returns
    -------
    SymbolCount

    Raises
    ------
    ValueError
        An input does not exist in the symbol or shapes cannot be inferred.
    """
    if data_shapes is None:
        data_shapes = {"data": (1, 3, 224, 224)}
    elif not isinstance(data_shapes, dict):
        data_shapes = parse_data_shapes(data_shapes)
    return count_graph(Graph(symbol, data_shapes), relu_bn)


def count_symbol_file(path, data_shapes=None, relu_bn=True):
    """:func:`count_symbol` on a ``-symbol.json`` file (or export prefix)."""
    return count_symbol(load_symbol(path), data_shapes, relu_bn)


def build_symbol(architecture, channels_layout="OneShot", use_se=False,
                 last_conv_after_pooling=False, input_size=224, classes=1000, data_name="data"):
    """The symbol graph of a fixed subnet, without initialising any weight.

    The graph is the one ``ShuffleNasOneShotFix.export`` writes (same hybrid_forward on a
    symbol input named ``data``).

    Parameters
    ----------
    architecture : Architecture
    channels_layout, use_se, last_conv_after_pooling, input_size, classes
        Model configuration (see :class:`~oneshot_nas.models.ShuffleNasOneShotFix`).

    Returns
    -------
    mxnet.symbol.Symbol
    """
    net = ShuffleNasOneShotFix(architecture, channels_layout=channels_layout, use_se=use_se,
                               last_conv_after_pooling=last_conv_after_pooling, classes=classes,
                               input_size=input_size)
    return net(mx.sym.var(data_name))
