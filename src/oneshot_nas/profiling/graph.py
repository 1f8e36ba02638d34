"""A parsed MXNet symbol graph with the shape of every tensor, inferred once for the whole graph.

Both counters (:mod:`.symbolic` for the FLOPs / params of docs/design.md and :mod:`.micronet`
for the
MicroNet profile) walk the nodes of this one structure instead of asking MXNet for shapes layer
by layer, which is what made the earlier port slow.
"""
import contextlib
import io
import json
import os

import mxnet as mx
import numpy as np

__all__ = ["Graph", "load_symbol", "parse_data_shapes", "graph_inputs"]


def _prod(shape):
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _last_line(err, limit=160):
    """The informative line of an exception (MXNet puts a C++ stack trace before it)."""
    lines = [l.strip() for l in str(err).splitlines() if l.strip()]
    lines = [l for l in lines if not l.startswith(("Traceback", "Stack trace", "File "))
             and not l[:1].isdigit() and not l.startswith("[bt]")] or [type(err).__name__]
    return lines[-1][:limit]


def load_symbol(path):
    """Load a symbol from ``prefix-symbol.json``, the file itself, or an export prefix.

    Parameters
    ----------
    path : str
        ``model-symbol.json`` or the prefix ``model`` given to ``HybridBlock.export``.

    Returns
    -------
    mxnet.symbol.Symbol

    Raises
    ------
    FileNotFoundError
        Neither ``path`` nor ``path + '-symbol.json'`` exists.
    ValueError
        The file is not a symbol JSON file.
    """
    candidates = [path] if os.path.isfile(path) else [path + "-symbol.json"]
    found = [c for c in candidates if os.path.isfile(c)]
    if not found:
        raise FileNotFoundError("symbol file %r not found (nor %r)" % (path, path + "-symbol.json"))
    try:
        with open(found[0]) as f:
            text = f.read()
        json.loads(text)
        return mx.sym.load_json(text)
    except (ValueError, mx.base.MXNetError) as err:
        raise ValueError("%r is not an MXNet symbol JSON file (%s)"
                         % (found[0], _last_line(err))) from None


def parse_data_shapes(specs):
    """Parse ``'data,1,3,224,224'`` strings into ``{'data': (1, 3, 224, 224)}``.

    Parameters
    ----------
    specs : str or sequence of str
        One or several ``name,d0,d1,...`` items; a single string may hold several items
        separated by ``;`` or whitespace.

    Returns
    -------
    dict
        Input name -> shape tuple, in the given order.

    Raises
    ------
    ValueError
        An item has no name, no dimension, or a dimension that is not a positive integer.
    """
    if isinstance(specs, str):
        specs = [specs]
    items = [item for spec in specs for item in spec.replace(";", " ").split()]
    if not items:
        raise ValueError("no data shape given; expected e.g. 'data,1,3,224,224'")
    shapes = {}
    for item in items:
        parts = [p.strip() for p in item.split(",")]
        name, dims = parts[0], parts[1:]
        if not name or name[0].isdigit() or not dims:
            raise ValueError("malformed data shape %r; expected NAME,D0,D1,... such as "
                             "'data,1,3,224,224'" % (item,))
        try:
            shape = tuple(int(d) for d in dims)
        except ValueError:
            raise ValueError("malformed data shape %r: dimensions must be integers, as in "
                             "'data,1,3,224,224'" % (item,)) from None
        if any(d <= 0 for d in shape):
            raise ValueError("malformed data shape %r: dimensions must be positive" % (item,))
        if name in shapes:
            raise ValueError("data shape for %r given twice" % (name,))
        shapes[name] = shape
    return shapes


def graph_inputs(symbol):
    """Arguments of ``symbol`` whose shape is not recorded in the graph (the data inputs)."""
    nodes = json.loads(symbol.tojson())["nodes"]
    known = {n["name"] for n in nodes if n["op"] == "null" and "__shape__" in n.get("attrs", {})}
    return [a for a in symbol.list_arguments() if a not in known]


class Graph:
    """Nodes of a symbol with every tensor shape, from one shape inference.

    Parameters
    ----------
    symbol : mxnet.symbol.Symbol
    data_shapes : dict
        Input name -> shape, e.g. ``{'data': (1, 3, 224, 224)}``.

    Raises
    ------
    ValueError
        An input named in ``data_shapes`` does not exist, or shapes cannot be inferred.
    """

    def __init__(self, symbol, data_shapes):
        arguments = symbol.list_arguments()
        missing = [name for name in data_shapes if name not in arguments]
        if missing:
            raise ValueError("the symbol has no input named %s; its inputs are: %s"
                             % (", ".join(repr(m) for m in missing),
                                ", ".join(graph_inputs(symbol)) or "(none)"))
        self.symbol = symbol
        self.data_names = tuple(data_shapes)
        self.nodes = json.loads(symbol.tojson())["nodes"]
        internals = symbol.get_internals()
        try:
            # On failure mxnet prints the arguments to stdout before raising; keep stdout clean.
            with contextlib.redirect_stdout(io.StringIO()):
                arg_shapes, out_shapes, aux_shapes = internals.infer_shape(**data_shapes)
        except mx.base.MXNetError as err:
            raise ValueError("shape inference failed for inputs %s: %s"
                             % (data_shapes, _last_line(err))) from None
        if arg_shapes is None:
            unknown = [a for a in graph_inputs(symbol) if a not in data_shapes]
            raise ValueError("shape inference is incomplete; give shapes for the inputs: %s"
                             % ", ".join(unknown))
        self.arg_shapes = dict(zip(internals.list_arguments(), map(tuple, arg_shapes)))
        self.aux_shapes = dict(zip(internals.list_auxiliary_states(), map(tuple, aux_shapes)))
        self._outputs = dict(zip(internals.list_outputs(), map(tuple, out_shapes)))
        self.aux_names = set(self.aux_shapes)
        self._ids = {n["name"]: i for i, n in enumerate(self.nodes)}

    # ---- shapes ----------------------------------------------------------------------------
    def output_shape(self, node_id, index=0):
        """Shape of output ``index`` of node ``node_id``."""
        node = self.nodes[node_id]
        name = node["name"]
        if node["op"] == "null":
            return self.arg_shapes.get(name) or self.aux_shapes[name]
        for key in ("%s_output%d" % (name, index), "%s_output" % name if index == 0 else None):
            if key is not None and key in self._outputs:
                return self._outputs[key]
        raise KeyError("no inferred shape for output %d of %r" % (index, name))

    def input_shape(self, node, k=0):
        """Shape of the ``k``-th input of ``node`` (a node dict)."""
        src, index = node["inputs"][k][0], node["inputs"][k][1]
        return self.output_shape(src, index)

    def node_id(self, name):
        """Index of the node called ``name``."""
        return self._ids[name]

    def input_node(self, node, k=0):
        return self.nodes[node["inputs"][k][0]]

    # ---- parameters ------------------------------------------------------------------------
    def is_param(self, node):
        """A variable that is a learned argument (not a data input, not a BN running stat)."""
        return (node["op"] == "null" and node["name"] not in self.data_names
                and node["name"] not in self.aux_names and node["name"] in self.arg_shapes)

    def node_params(self, node):
        """Number of learned arguments feeding ``node`` directly."""
        total = 0
        for src, _, _ in node["inputs"]:
            var = self.nodes[src]
            if self.is_param(var):
                total += _prod(self.arg_shapes[var["name"]])
        return total

    def total_params(self):
        """Every argument of the graph except the data inputs (docs/design.md, section 5)."""
        return sum(_prod(s) for name, s in self.arg_shapes.items() if name not in self.data_names)

    def op_nodes(self):
        """``(node_id, node)`` for every operator node, in topological order."""
        return [(i, n) for i, n in enumerate(self.nodes) if n["op"] != "null"]


def attr(node, key, default=None):
    """An operator attribute as a string (MXNet JSON keeps ``attrs``; old files ``param``)."""
    return node.get("attrs", node.get("param", {})).get(key, default)


def attr_tuple(node, key):
    value = attr(node, key)
    if value is None:
        return ()
    return tuple(int(v) for v in value.strip("()[] ").split(",") if v.strip())


def attr_bool(node, key, default=False):
    value = attr(node, key)
    return default if value is None else value.strip() in ("True", "true", "1")
