"""BatchNorm folding: merge every inference-mode BN into the convolution that feeds it.

For a convolution ``y = W * x + b`` followed by ``BN(y) = gamma * (y - mean) / sqrt(var + eps)
+ beta``, the folded convolution has ``W' = W * s`` (per output channel) and
``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``. Depthwise convolutions fold
the same way (one output channel per group). The result is a BN-free graph with the same outputs
in inference mode, up to float32 rounding.

The folding works on the graph (the symbol's JSON), so it applies to any exported subnet, with
any block choices and tail, and to graphs built by :func:`~.loading.net_to_graph`.
"""
import json
import logging

import numpy as np
import mxnet as mx

from .loading import graph_block, net_to_graph

__all__ = ["fold_batchnorm", "fold_net", "count_ops"]

logger = logging.getLogger(__name__)

_FALSE = ("false", "0")


def _attr(node, key, default):
    return node.get("attrs", node.get("attr", node.get("param", {}))).get(key, default)


def _is_true(value):
    return str(value).strip().lower() not in _FALSE


def count_ops(symbol):
    """``{op name: count}`` of the non-variable nodes of a symbol."""
    counts = {}
    for node in json.loads(symbol.tojson())["nodes"]:
        if node["op"] != "null":
            counts[node["op"]] = counts.get(node["op"], 0) + 1
    return counts


def _plan(nodes, heads):
    """BN node id -> conv node id for every BN that can be folded: its data input is output 0
    of a Convolution that nothing else reads, and only its own output 0 is read."""
    readers = {}
    for nid, node in enumerate(nodes):
        for src, idx, _ in node["inputs"]:
            readers.setdefault((src, idx), []).append(nid)
    for src, idx, _ in heads:
        readers.setdefault((src, idx), []).append(None)
    plan = {}
    for nid, node in enumerate(nodes):
        if node["op"] != "BatchNorm" or int(_attr(node, "axis", 1)) != 1:
            continue
        src, idx, _ = node["inputs"][0]
        if nodes[src]["op"] != "Convolution" or idx != 0:
            continue
        if readers.get((src, 0)) != [nid]:
            continue
        if readers.get((nid, 1)) or readers.get((nid, 2)):
            continue
        plan[nid] = src
    return plan


def _fold_weights(conv, bn, nodes, arg_params, aux_params):
    """New ``(weight, bias)`` numpy arrays of ``conv`` with ``bn`` merged in."""
    name = lambda entry: nodes[entry[0]]["name"]  # noqa: E731
    weight = arg_params[name(conv["inputs"][1])].asnumpy().astype("float64")
    out_channels = weight.shape[0]
    if _is_true(_attr(conv, "no_bias", "False")):
        bias = np.zeros(out_channels)
    else:
        bias = arg_params[name(conv["inputs"][2])].asnumpy().astype("float64")
    gamma_in, beta_in, mean_in, var_in = bn["inputs"][1:5]
    gamma = arg_params[name(gamma_in)].asnumpy().astype("float64")
    if _is_true(_attr(bn, "fix_gamma", "True")):
        gamma = np.ones_like(gamma)
    beta = arg_params[name(beta_in)].asnumpy().astype("float64")
    mean = aux_params[name(mean_in)].asnumpy().astype("float64")
    var = aux_params[name(var_in)].asnumpy().astype("float64")
    eps = float(_attr(bn, "eps", 1e-3))
    scale = gamma / np.sqrt(var + eps)
    weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    bias = (bias - mean) * scale + beta
    return weight.astype("float32"), bias.astype("float32")


def fold_batchnorm(symbol, arg_params, aux_params):
    """Fold every BatchNorm that directly follows a convolution into it.

    Parameters
    ----------
    symbol : Symbol
        A float32 inference graph (exported subnet).
    arg_params, aux_params : dict
        Its parameters (``name -> NDArray``).

    Returns
    -------
    (Symbol, dict, dict)
        The folded graph and its parameters. Convolutions that absorbed a BN get a bias named
        ``<conv>_bias`` (or keep theirs); BN parameters and running statistics are dropped.
        BatchNorms that do not follow a convolution are kept as they are.
    """
    graph = json.loads(symbol.tojson())
    nodes, heads = graph["nodes"], graph["heads"]
    plan = _plan(nodes, heads)
    conv_of = {conv: bn for bn, conv in plan.items()}
    new_args = {k: v for k, v in arg_params.items()}
    new_aux = {k: v for k, v in aux_params.items()}
    # BN parameters and statistics go, unless something else also reads them.
    var_readers = {}
    for nid, node in enumerate(nodes):
        for src, _, _ in node["inputs"]:
            if nodes[src]["op"] == "null":
                var_readers.setdefault(src, set()).add(nid)
    dropped_vars = {src for bn_id in plan for src, _, _ in nodes[bn_id]["inputs"][1:]
                    if var_readers[src] <= set(plan)}

    out_nodes, new_id = [], {}

    def remap(entry):
        src, idx, ver = entry
        return [new_id[src], idx, ver]

    for nid, node in enumerate(nodes):
        if nid in plan:
            # The BN's output 0 becomes the (folded) convolution's output 0.
            new_id[nid] = new_id[plan[nid]]
            continue
        if nid in dropped_vars:
            continue
        node = dict(node)
        if nid in conv_of:
            bn = nodes[conv_of[nid]]
            weight, bias = _fold_weights(node, bn, nodes, arg_params, aux_params)
            weight_name = nodes[node["inputs"][1][0]]["name"]
            new_args[weight_name] = mx.nd.array(weight)
            inputs = [remap(e) for e in node["inputs"]]
            if _is_true(_attr(node, "no_bias", "False")):
                bias_name = node["name"] + "_bias"
                out_nodes.append({"op": "null", "name": bias_name, "inputs": []})
                inputs.append([len(out_nodes) - 1, 0, 0])
            else:
                bias_name = nodes[node["inputs"][2][0]]["name"]
            new_args[bias_name] = mx.nd.array(bias)
            attrs = dict(node.get("attrs", {}))
            attrs["no_bias"] = "False"
            node["attrs"] = attrs
            node["inputs"] = inputs
        else:
            node["inputs"] = [remap(e) for e in node["inputs"]]
        out_nodes.append(node)
        new_id[nid] = len(out_nodes) - 1

    folded = {"nodes": out_nodes,
              "arg_nodes": [i for i, n in enumerate(out_nodes) if n["op"] == "null"],
              "heads": [remap(e) for e in heads],
              "attrs": graph.get("attrs", {})}
    new_symbol = mx.sym.load_json(json.dumps(folded))
    args, auxs = set(new_symbol.list_arguments()), set(new_symbol.list_auxiliary_states())
    new_args = {k: v for k, v in new_args.items() if k in args}
    new_aux = {k: v for k, v in new_aux.items() if k in auxs}
    left = count_ops(new_symbol).get("BatchNorm", 0)
    logger.info("folded %d BatchNorm layers into convolutions (%d left)", len(plan), left)
    return new_symbol, new_args, new_aux


def fold_net(net, ctx=None, hybridize=True):
    """A BN-free ``SymbolBlock`` computing the same as an initialised fixed subnet in inference.

    Parameters
    ----------
    net : HybridBlock
        e.g. a trained ``ShuffleNasOneShotFix``.
    ctx : Context, optional
    hybridize : bool

    Returns
    -------
    SymbolBlock
    """
    symbol, arg_params, aux_params = fold_batchnorm(*net_to_graph(net))
    return graph_block(symbol, arg_params, aux_params, ctx=ctx, hybridize=hybridize)
