"""Depthwise convolution with two exact fast paths for MXNet 1.9.1 on the CPU.

Both paths compute exactly what ``F.Convolution(..., num_group=channels)`` computes
(docs/design.md, section 7):

* **Kernel cropping.** With zero padding, a k x k kernel on an H x W map only ever touches the
  taps that some output position can reach inside the map (the central (2H-1) x (2W-1) taps at
  stride 1). When the map is smaller than that, the convolution runs on the cropped kernel with
  the padding shrunk to match; the parameter keeps its full shape and its other taps get a zero
  gradient, as they do in the plain convolution. oneDNN's forward for a kernel larger than the
  map is ~100x slower than for the cropped one.
* **Weight gradient.** oneDNN (as called by MXNet) runs the depthwise weight gradient as a
  per-group GEMM on plain NCHW tensors, 5-10x slower than the forward. Here the convolution
  gets its weight through ``BlockGrad`` (so MXNet computes only the fast data gradient) and a
  pass-through custom operator adds the weight gradient, computed as another depthwise
  *forward* convolution: the N*C maps of the input, each correlated with its own output
  gradient (kernel = dY, dilation = stride), summed over the batch. oneDNN runs that as a
  blocked depthwise kernel. The custom operator is used only while autograd records (eagerly)
  or while a model builds its training graph (:func:`specialized_graph`); exported symbols and
  graphs built by calling a block on a Symbol are plain convolutions.

:func:`use_fast_depthwise` switches both paths off, for comparisons with the plain layers.
:class:`GraphPerInputSize` gives a model block one cached graph per input map size.
"""
import contextlib
import threading

import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import nn

__all__ = ["DepthwiseConv2D", "depthwise_conv", "crop_plan", "conv_output_size",
           "use_fast_depthwise", "specialized_graph", "GraphPerInputSize"]

_OP_NAME = "oneshot_nas_depthwise_wgrad"

_state = threading.local()
_FAST = {"enabled": True}


@contextlib.contextmanager
def use_fast_depthwise(enabled=True):
    """Turn the fast paths on or off (process-wide) inside the ``with`` block.

    Hybridized blocks keep the graph they built: clear their cached graph (``hybridize()``)
    after switching if they already ran.
    """
    before = _FAST["enabled"]
    _FAST["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _FAST["enabled"] = before


@contextlib.contextmanager
def specialized_graph():
    """Symbolic depthwise layers inside this block crop their kernels to the map sizes set by
    ``set_input_size`` and carry the fast weight gradient (models use it while they build
    their cached training graph for one input size)."""
    before = getattr(_state, "specialized", False)
    _state.specialized = True
    try:
        yield
    finally:
        _state.specialized = before


class GraphPerInputSize:
    """Mixin of a model HybridBlock with ``set_input_size(size)``: its cached graph is built for
    one input map size (cropped depthwise kernels, fast depthwise weight gradient); a new map
    size rebuilds it."""

    _graph_input_size = None

    def _forward_for_input_size(self, x, *args):
        """The hybridized forward of NDArray ``x``, through the graph built for its map size."""
        size = tuple(x.shape[2:])
        if size != self._graph_input_size:
            self._clear_cached_op()
            self.set_input_size(size)
            self._graph_input_size = size
        with specialized_graph():
            return nn.HybridBlock.forward(self, x, *args)


def conv_output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def crop_plan(kernel, stride, size):
    """``(begin, end, pad)`` of the taps of a centred ``kernel`` (padding ``kernel // 2``) that
    can reach a map of ``size`` pixels along one axis, or ``None`` when all can."""
    if kernel < 5:
        # 3x3 kernels run fast uncropped; cropping them to 1x1 / 2x2 made a training run
        # non-reproducible (tests/test_faults.py), so only 5x5 / 7x7 kernels are cropped
        return None
    pad = kernel // 2
    out = conv_output_size(size, kernel, stride, pad)
    begin = max(0, pad - stride * (out - 1))
    end = min(kernel, pad + size)
    new_pad = pad - begin
    if end - begin == kernel or conv_output_size(size, end - begin, stride, new_pad) != out:
        return None
    return begin, end, new_pad


class _WeightGrad(mx.operator.CustomOp):
    """Forward: identity on the convolution output. Backward: passes the output gradient on
    and writes the depthwise weight gradient computed from the input and the output gradient."""

    def __init__(self, kernel, stride, pad):
        super().__init__()
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def forward(self, is_train, req, in_data, out_data, aux):
        self.assign(out_data[0], req[0], in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        dy, x = out_grad[0], in_data[1]
        self.assign(in_grad[0], req[0], dy)
        if req[1] != "null":
            self.assign(in_grad[1], req[1], 0)
        if req[2] == "null":
            return
        n, c, h, w = x.shape
        ho, wo = dy.shape[2:]
        kh, kw = self.kernel
        # input maps correlated with their own output gradient (dilation = stride)
        g = nd.Convolution(x.reshape((1, n * c, h, w)), dy.reshape((n * c, 1, ho, wo)),
                           kernel=(ho, wo), dilate=self.stride, pad=self.pad,
                           num_filter=n * c, num_group=n * c, no_bias=True)
        if g.shape[2:] != (kh, kw):
            g = nd.slice(g, begin=(None, None, 0, 0), end=(None, None, kh, kw))
        g = g.reshape((n, c, kh, kw)).sum(axis=0).reshape((c, 1, kh, kw))
        self.assign(in_grad[2], req[2], g)


@mx.operator.register(_OP_NAME)
class _WeightGradProp(mx.operator.CustomOpProp):
    def __init__(self, kernel, stride, pad):
        super().__init__(need_top_grad=True)
        parse = lambda s: tuple(int(v) for v in s.strip("()[] ").split(",") if v.strip())
        self.kernel, self.stride, self.pad = parse(kernel), parse(stride), parse(pad)

    def list_arguments(self):
        return ["y", "x", "weight"]

    def list_outputs(self):
        return ["output"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        return [out_grad[0], in_data[1]]

    def create_operator(self, ctx, shapes, dtypes):
        return _WeightGrad(self.kernel, self.stride, self.pad)


def _fast_weight_grad_pays(kernels, stride, size):
    """Where the weight gradient as a forward convolution was measured faster
    (bench/bench_depthwise.py): kernels of 5 taps or more (oneDNN runs 3x3 weight gradients with
    its depthwise kernel already), except stride-2 convolutions on maps larger than 64 pixels
    (the dilated formulation is slower there)."""
    return max(kernels) >= 5 and (stride == 1 or size is None or max(size) <= 64)


def _plain_copy(F, t):
    return F.slice_axis(t, axis=0, begin=0, end=None)


def _fmt(pair):
    return "(%d,%d)" % tuple(pair)


def depthwise_conv(F, x, weight, kernel, stride, channels, map_size=None):
    """Depthwise ``kernel`` x ``kernel`` convolution (padding ``kernel // 2``, no bias) of the
    ``channels`` channels of ``x`` with ``weight`` (channels, 1, kernel, kernel).

    Eagerly the map size comes from ``x``; symbolically from ``map_size`` inside
    :func:`specialized_graph` (plain convolution otherwise).
    """
    kernels, strides = (kernel, kernel), (stride, stride)
    pads = (kernel // 2, kernel // 2)
    eager = F is nd
    fast = _FAST["enabled"] and (eager or getattr(_state, "specialized", False))
    if fast:
        size = x.shape[2:] if eager else map_size
        plans = [crop_plan(kernel, stride, s) for s in size] if size is not None else [None] * 2
        if any(p is not None for p in plans):
            plans = [p or (0, kernel, kernel // 2) for p in plans]
            weight = F.slice(weight, begin=(None, None, plans[0][0], plans[1][0]),
                             end=(None, None, plans[0][1], plans[1][1]))
            kernels = tuple(p[1] - p[0] for p in plans)
            pads = tuple(p[2] for p in plans)
    grad_trick = (fast and (not eager or autograd.is_recording())
                  and _fast_weight_grad_pays(kernels, stride, x.shape[2:] if eager else map_size))
    if not grad_trick:
        return F.Convolution(x, weight, kernel=kernels, stride=strides, pad=pads,
                             num_filter=channels, num_group=channels, no_bias=True)
    # Only the data gradient from MXNet: the weight comes through BlockGrad. A zero bias is
    # passed as well because MXNet 1.9.1's oneDNN backward checks the bias request of a
    # bias-free convolution (an out-of-range read) and then sometimes runs the slow weight
    # gradient anyway (seen in DNNL_VERBOSE).
    y = F.Convolution(x, F.BlockGrad(weight), F.zeros(shape=(channels,)), kernel=kernels,
                      stride=strides, pad=pads, num_filter=channels, num_group=channels,
                      no_bias=False)
    if grad_trick:
        # A custom operator reads its arrays as plain NCHW memory, while oneDNN may hold them in
        # blocked layouts: hand it plain copies and take its output through one, so that the
        # gradient it gets back is plain too. A full slice is such a copy (identity / _copy /
        # scalar ops were tried and are not: they run in place or keep oneDNN's layout).
        y = _plain_copy(F, F.Custom(_plain_copy(F, y), F.BlockGrad(_plain_copy(F, x)), weight,
                                op_type=_OP_NAME, kernel=_fmt(kernels), stride=_fmt(strides),
                                pad=_fmt(pads)))
    return y


class DepthwiseConv2D(nn.HybridBlock):
    """A bias-free depthwise convolution with the parameter layout and auto-naming of
    ``nn.Conv2D(channels, kernel, strides, kernel // 2, groups=channels)``, running the exact
    fast paths of this module."""

    def __init__(self, channels, kernel_size, strides=1, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.kernel, self.stride = channels, kernel_size, strides
        self.map_size = None
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(channels, 1, kernel_size, kernel_size),
                                          init=weight_initializer, allow_deferred_init=False)

    def _alias(self):
        return "conv"       # same parameter names as the nn.Conv2D it replaces

    def set_input_size(self, size):
        """Record the input map size (for graphs built in :func:`specialized_graph`) and
        return the output size."""
        self.map_size = tuple(size)
        pad = self.kernel // 2
        return tuple(conv_output_size(s, self.kernel, self.stride, pad) for s in size)

    def hybrid_forward(self, F, x, weight):
        return depthwise_conv(F, x, weight, self.kernel, self.stride, self.channels,
                              self.map_size)

    def __repr__(self):
        return "%s(%d, kernel_size=%d, stride=%d)" % (type(self).__name__, self.channels,
                                                      self.kernel, self.stride)
