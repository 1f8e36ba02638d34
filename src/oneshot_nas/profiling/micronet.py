"""MicroNet-challenge profile of a subnet: op-by-op table, totals and scores.

Counting follows the op-by-op MicroNet profile published with OneShot-S+ (the reference
profile), whose totals docs/design.md (section 5) quotes (3.652M params, 301.4M mults + 288.3M
adds):

* BatchNorm is folded into the preceding convolution at inference and is not counted.
* Convolution / fully connected (quantizable): params = weight + bias; per output element
  ``k = weight elements per output`` multiplies and ``k - 1`` adds, plus one add with a bias.
* ReLU (quantizable): one multiply (comparison) per element.
* Hard-swish (not quantizable): ``+3`` one add, ``clip`` two multiplies (two comparisons),
  ``/6`` one multiply, ``x *`` one multiply per element. Hard-sigmoid: the same without the
  last multiply. MXNet's fused ``hard_sigmoid`` op is counted as its three pieces.
* Global average pooling (not quantizable): ``(H*W - 1) * C`` adds and ``C`` multiplies.
* Channel shuffle (not quantizable): a permutation stored as a sparse 1x1 convolution: one
  multiply per element, no add, ``C`` values plus a ``C x C`` bit mask counted as
  ``C * C / 16`` parameters.
* The SE gate's broadcast multiply is not in the reference figures; ``count_se_scale=True``
  counts it (one multiply per element, not quantizable).

All counts are per image. The reference profile's per-block rows count ``clip`` once while its
totals (the figures above) count it twice; this module counts it twice everywhere, so its rows
of blocks with hard-swish are slightly above the reference rows (e.g. 32.54M vs 32.11M
multiplies for block 4) and its totals match the reference totals.

Scores against a reference model (MobileNetV2-1.4: 6.9M params, 1170 MFLOPs), as the reference
profile computes them: float32 ``params / P + (mults + adds) / F``; float16 halves the params
and the multiplies; int8 counts the quantizable params, multiplies and adds at 1/4 and the rest
in full.
"""
import csv
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace

from ..search_space import BLOCK_TYPES
from .graph import Graph, _prod, attr, attr_bool, attr_tuple, parse_data_shapes

__all__ = ["MicroNetOp", "MicroNetProfile", "micronet_profile", "MOBILENET_V2_14"]

log = logging.getLogger(__name__)

# The scores' reference model: (millions of params, MFLOPs).
MOBILENET_V2_14 = (6.9, 1170.0)

_BLOCK_RE = re.compile(r"(shufflenetv2block\d+|shufflexceptionblock\d+)")
# ShuffleConv (models/nn/shuffle.py) names its permutation convolution "shuffleconv<N>_...".
_SHUFFLE_CONV_RE = re.compile(r"shuffleconv\d*_")
_ADD_OPS = {"_plus_scalar", "_minus_scalar", "_rminus_scalar", "elemwise_add", "broadcast_add",
            "elemwise_sub", "broadcast_sub", "_add", "_plus", "_sub", "_minus"}
_MUL_OPS = {"_mul_scalar", "_div_scalar", "_rdiv_scalar", "elemwise_mul", "elemwise_div",
            "broadcast_div", "_mul", "_div"}
_FREE_OPS = {"Reshape", "transpose", "slice_axis", "slice", "Concat", "concat", "Flatten",
             "flatten", "Dropout", "identity", "_copy", "split", "SliceChannel", "expand_dims",
             "squeeze", "BlockGrad", "stop_gradient", "Cast", "amp_cast", "BatchNorm",
             "_contrib_SyncBatchNorm"}
COLUMNS = ("op_name", "quantizable", "inp_size", "kernel_size", "Cin", "Cout", "params(M)",
           "mults(M)", "adds(M)", "MFLOPS")


@dataclass
class MicroNetOp:
    """One row of the profile (an op, or a whole choice block in the summary).

    ``quantizable`` is ``True``, ``False`` or ``'Mixed'``; counts are absolute numbers.
    """

    name: str
    label: str
    quantizable: object
    inp_size: int
    kernel_size: int
    cin: int
    cout: int
    params: float = 0.0
    mults: float = 0.0
    adds: float = 0.0
    group: str = None
    parts: dict = field(default_factory=dict)   # summary rows: quantizable flag -> op count

    @property
    def flops(self):
        return self.mults + self.adds


def _spatial(shape):
    return shape[2] if len(shape) > 2 else 1


@dataclass
class MicroNetProfile:
    """Op-by-op MicroNet counts of one graph.

    Attributes
    ----------
    ops : list of MicroNetOp
        Every counted op.
    rows : list of MicroNetOp
        The summary, as the reference profile lays it out: choice blocks aggregated, other ops
        as they are.
    reference : (float, float)
        Reference model (millions of params, MFLOPs) of the scores.
    uncounted : dict
        Op name -> count of ops that no rule covers.
    """

    ops: list
    rows: list
    reference: tuple = MOBILENET_V2_14
    uncounted: dict = field(default_factory=dict)

    # ---- totals and scores -----------------------------------------------------------------
    def totals(self):
        """``{'quant': (params, mults, adds), 'no_quant': ..., 'total': ...}`` in millions."""
        acc = {True: [0.0, 0.0, 0.0], False: [0.0, 0.0, 0.0]}
        for op in self.ops:
            part = acc[bool(op.quantizable)]
            part[0] += op.params
            part[1] += op.mults
            part[2] += op.adds
        quant = tuple(v / 1e6 for v in acc[True])
        no_quant = tuple(v / 1e6 for v in acc[False])
        return dict(quant=quant, no_quant=no_quant,
                    total=tuple(a + b for a, b in zip(quant, no_quant)))

    def scores(self):
        """Normalised MicroNet scores for float32, float16 and int8 (lower is better).

        Returns
        -------
        dict
            ``{'float32': {'param': p, 'flop': f, 'score': p + f}, 'float16': ..., 'int8': ...}``
        """
        ref_params, ref_flops = self.reference
        t = self.totals()
        (qp, qm, qa), (np_, nm, na) = t["quant"], t["no_quant"]
        params, mults, adds = t["total"]
        out = {}
        for name, p, f in (
                ("float32", params / ref_params, (mults + adds) / ref_flops),
                ("float16", params / 2 / ref_params, (mults / 2 + adds) / ref_flops),
                ("int8", (qp / 4 + np_) / ref_params,
                 ((qm / 4 + nm) + (qa / 4 + na)) / ref_flops)):
            out[name] = dict(param=p, flop=f, score=p + f)
        return out

    # ---- output ----------------------------------------------------------------------------
    def _table_rows(self, detailed):
        rows = self.ops if detailed else self.rows
        t = self.totals()
        body = []
        for op in rows:
            q = op.quantizable if isinstance(op.quantizable, str) else str(bool(op.quantizable))
            body.append([op.label if not detailed else op.name, q, op.inp_size, op.kernel_size,
                         op.cin, op.cout, op.params / 1e6, op.mults / 1e6, op.adds / 1e6,
                         op.flops / 1e6])
        for name, q, key in (("Total_quant", "True", "quant"),
                             ("Total_no_quant", "False", "no_quant"), ("Total", "", "total")):
            p, m, a = t[key]
            body.append([name, q, "", "", "", "", p, m, a, m + a])
        return body

    def to_markdown(self, detailed=False):
        """The profile table (``detailed=True``: one row per op) followed by the scores."""
        lines = ["| " + " | ".join(COLUMNS) + " |",
                 "|:---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in self._table_rows(detailed):
            cells = [str(c) if not isinstance(c, float) else "%.3f" % c for c in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(self.scores_markdown())
        return "\n".join(lines)

    def scores_markdown(self):
        ref_p, ref_f = self.reference
        s = self.scores()
        lines = ["Scores against the reference (%.1fM params, %.0f MFLOPs):" % (ref_p, ref_f), "",
                 "| precision | param score | flop score | score |", "|---|---:|---:|---:|"]
        for name in ("float32", "float16", "int8"):
            lines.append("| %s | %.3f | %.3f | %.3f |" % (name, s[name]["param"],
                                                       s[name]["flop"], s[name]["score"]))
        return "\n".join(lines)

    def to_csv(self, detailed=False):
        """The table as CSV (full precision, in millions)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self._table_rows(detailed):
            writer.writerow(["%.6f" % c if isinstance(c, float) else c for c in row])
        return buf.getvalue()

    def to_dict(self):
        """Totals and scores, JSON-ready."""
        t = self.totals()
        out = {key: dict(params_m=round(v[0], 6), mults_m=round(v[1], 6), adds_m=round(v[2], 6),
                         flops_m=round(v[1] + v[2], 6)) for key, v in t.items()}
        out["scores"] = {k: {kk: round(vv, 6) for kk, vv in v.items()}
                         for k, v in self.scores().items()}
        out["reference"] = dict(params_m=self.reference[0], flops_m=self.reference[1])
        return out


# ---- counting ------------------------------------------------------------------------------
def _label(name, op):
    lname = name.lower()
    if op == "conv":
        if "stem" in lname or "first" in lname:
            return "First conv"
        if "head" in lname or "classifier" in lname:
            return "Classifier"
        if "_se" in lname:
            return "SE conv"
        if "tail" in lname or "last" in lname or "fc" in lname:
            return "Last conv"
        return "Conv"
    return op


def _count_ops(graph, count_se_scale):
    ops, uncounted = [], Counter()
    nodes = graph.nodes
    merged = set()
    # hard-swish = elemwise_mul(x, hard_sigmoid(x)): find the multiplies that belong to one.
    hswish_of = {}
    for i, n in graph.op_nodes():
        if n["op"] in ("elemwise_mul", "broadcast_mul", "_mul") and len(n["inputs"]) == 2:
            (a, _, _), (b, _, _) = n["inputs"]
            for gate, other in ((a, b), (b, a)):
                g = nodes[gate]
                if g["op"] == "hard_sigmoid" and g["inputs"][0][0] == other:
                    hswish_of[gate] = i
                    merged.add(i)

    for i, n in graph.op_nodes():
        op, name = n["op"], n["name"]
        if i in merged or op in _FREE_OPS:
            continue
        out = graph.output_shape(i)
        size = _prod(out[1:])
        inp = graph.input_shape(n, 0) if n["inputs"] else out
        row = dict(name=name, inp_size=_spatial(inp), kernel_size=-1,
                   cin=inp[1] if len(inp) > 1 else 1, cout=out[1] if len(out) > 1 else 1)
        if op in ("Convolution", "FullyConnected"):
            weight = graph.input_shape(n, 1)
            bias = not attr_bool(n, "no_bias")
            if op == "Convolution" and _SHUFFLE_CONV_RE.search(name):
                # A channel shuffle written as a constant permutation convolution.
                c = out[1]
                ops.append(MicroNetOp(label="Shuffle", quantizable=False, params=c * c / 16 + c,
                                      mults=size, adds=0, **dict(row, kernel_size=1)))
                continue
            k = _prod(weight[1:])
            ops.append(MicroNetOp(label=_label(name, "conv"), quantizable=True,
                                  params=graph.node_params(n), mults=size * k,
                                  adds=size * (k - 1) + (size if bias else 0),
                                  **dict(row, kernel_size=weight[2] if len(weight) > 2 else 1)))
        elif op in ("Activation", "relu") and (op == "relu" or attr(n, "act_type") == "relu"):
            ops.append(MicroNetOp(label="ReLU", quantizable=True, mults=size, **row))
        elif op == "hard_sigmoid":
            if i in hswish_of:   # + 3, clip (two comparisons), / 6, x *
                ops.append(MicroNetOp(label="HSwish", quantizable=False, mults=4 * size,
                                      adds=size, **row))
            else:                # + 3, clip, / 6
                ops.append(MicroNetOp(label="HSigmoid", quantizable=False, mults=3 * size,
                                      adds=size, **row))
        elif op == "clip":
            ops.append(MicroNetOp(label="Clip", quantizable=False, mults=2 * size, **row))
        elif op == "SwapAxis":
            # Channel shuffle (reshape, swap axes, reshape): its input is the reshaped tensor.
            src = graph.input_node(n, 0)
            orig = graph.input_shape(src, 0) if src["op"] == "Reshape" else inp
            c = orig[1]
            ops.append(MicroNetOp(label="Shuffle", quantizable=False, params=c * c / 16 + c,
                                  mults=_prod(orig[1:]), adds=0,
                                  **dict(row, inp_size=_spatial(orig), kernel_size=1,
                                         cin=c, cout=c)))
        elif op == "Pooling":
            if attr_bool(n, "global_pool"):
                area = _prod(inp[2:])
            else:
                area = _prod(attr_tuple(n, "kernel"))
            if attr(n, "pool_type", "max") == "avg":
                ops.append(MicroNetOp(label="GAP" if attr_bool(n, "global_pool") else "AvgPool",
                                      quantizable=False, mults=size, adds=size * (area - 1),
                                      **row))
            else:
                ops.append(MicroNetOp(label="MaxPool", quantizable=False,
                                      mults=size * (area - 1), **row))
        elif op == "broadcast_mul":
            a, b = graph.input_shape(n, 0), graph.input_shape(n, 1)
            is_se = len(a) == len(b) == 4 and (_prod(a[2:]) == 1) != (_prod(b[2:]) == 1)
            if is_se and not count_se_scale:
                continue
            ops.append(MicroNetOp(label="SE scale" if is_se else "Mul", quantizable=False,
                                  mults=size, **row))
        elif op in _MUL_OPS:
            ops.append(MicroNetOp(label="Mul", quantizable=False, mults=size, **row))
        elif op in _ADD_OPS:
            ops.append(MicroNetOp(label="Add", quantizable=False, adds=size, **row))
        else:
            uncounted[op] += 1
    if uncounted:
        log.warning("MicroNet profile: no counting rule for %s; not counted", dict(uncounted))
    return ops, dict(uncounted)


def _summarise(graph, ops):
    """Aggregate the ops of every choice block into one row, as the reference profile does."""
    members = {}
    for i, n in enumerate(graph.nodes):
        if n["op"] == "null":
            continue
        m = _BLOCK_RE.search(n["name"])
        if m:
            members.setdefault(m.group(1), []).append(i)
    info = {}
    for key, ids in members.items():
        inside = set(ids)
        block_in = None
        for i in ids:
            for src, index, _ in graph.nodes[i]["inputs"]:
                if src not in inside and graph.nodes[src]["op"] != "null":
                    block_in = graph.output_shape(src, index)
                    break
            if block_in is not None:
                break
        block_out = graph.output_shape(ids[-1])
        kernels = [graph.input_shape(graph.nodes[i], 1)[2] for i in ids
                   if graph.nodes[i]["op"] == "Convolution"
                   and int(attr(graph.nodes[i], "num_group", "1")) > 1]
        kernel = max(kernels) if kernels else -1
        if key.startswith("shufflexception"):
            label = "%s%dx%d" % (BLOCK_TYPES[3][0][:-1], kernel, kernel)
        else:
            label = "SNB-%dx%d" % (kernel, kernel)
        block_in = block_in or block_out
        info[key] = MicroNetOp(name=key, label=label, quantizable=None,
                               inp_size=_spatial(block_in), kernel_size=kernel, cin=block_in[1],
                               cout=block_out[1], group=key)
    rows, seen = [], {}
    for op in ops:
        m = _BLOCK_RE.search(op.name)
        if not m:
            rows.append(op)
            continue
        key = m.group(1)
        if key not in seen:
            seen[key] = replace(info[key], parts={})
            rows.append(seen[key])
        row = seen[key]
        row.params += op.params
        row.mults += op.mults
        row.adds += op.adds
        row.parts[bool(op.quantizable)] = row.parts.get(bool(op.quantizable), 0) + 1
    for row in seen.values():
        kinds = set(row.parts)
        row.quantizable = "Mixed" if len(kinds) > 1 else (kinds.pop() if kinds else False)
    return rows


def micronet_profile(symbol, data_shapes=None, reference=MOBILENET_V2_14, count_se_scale=False):
    """MicroNet op-by-op profile of a symbol graph.

    Parameters
    ----------
    symbol : mxnet.symbol.Symbol
        An exported subnet (``-symbol.json``) or :func:`~.symbolic.build_symbol`.
    data_shapes : dict or str, optional
        Defaults to ``{'data': (1, 3, 224, 224)}``.
    reference : (float, float)
        Millions of params and MFLOPs of the reference model (MobileNetV2-1.4).
    count_se_scale : bool
        Count the SE gate multiply, which the reference figures leave out.

    Returns
    -------
    MicroNetProfile
    """
    if data_shapes is None:
        data_shapes = {"data": (1, 3, 224, 224)}
    elif not isinstance(data_shapes, dict):
        data_shapes = parse_data_shapes(data_shapes)
    graph = Graph(symbol, data_shapes)
    ops, uncounted = _count_ops(graph, count_se_scale)
    return MicroNetProfile(ops, _summarise(graph, ops), tuple(reference), uncounted)
