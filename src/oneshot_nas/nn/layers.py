"""Convolutions that can run on a leading slice of their channels, and the SE module."""
import mxnet as mx
from mxnet.gluon import nn

from ..search_space import make_divisible
from .activations import HardSigmoid
from .depthwise import conv_output_size, depthwise_conv

__all__ = ["ElasticConv2D", "SE"]


class ElasticConv2D(nn.HybridBlock):
    """Bias-free convolution stored at maximum width, optionally run on the first channels.

    ``conv(x)`` is a plain convolution at full width. ``conv(x, active)`` keeps the first
    ``active`` channels: for a depthwise conv of its channels, for a pointwise conv of its
    output (``slice_out``) and / or input (``slice_in``). Only the slice of the weight takes
    part in the computation, so the rest gets exactly zero gradient. Its parameter is named
    ``weight`` with the layout of ``nn.Conv2D`` so that sliced copies load into one.
    """

    channel_sliced = True

    def __init__(self, in_channels, channels, kernel_size=1, strides=1, depthwise=False,
                 slice_in=False, slice_out=False, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if depthwise and in_channels != channels:
            raise ValueError("a depthwise conv keeps its width: %d != %d" % (in_channels, channels))
        self.in_channels, self.channels = in_channels, channels
        self.depthwise = depthwise
        self.slice_in, self.slice_out = slice_in or depthwise, slice_out or depthwise
        self.kernel = (kernel_size, kernel_size)
        self.strides = (strides, strides)
        self.pad = (kernel_size // 2, kernel_size // 2)
        self.map_size = None
        shape = (channels, 1 if depthwise else in_channels) + self.kernel
        with self.name_scope():
            self.weight = self.params.get("weight", shape=shape, init=weight_initializer,
                                          allow_deferred_init=False)

    def set_input_size(self, size):
        """Record the input map size (depthwise kernels are cropped to it in graphs built by
        ``specialized_graph``) and return the output size."""
        self.map_size = tuple(size)
        return tuple(conv_output_size(s, k, st, p)
                     for s, k, st, p in zip(size, self.kernel, self.strides, self.pad))

    def hybrid_forward(self, F, x, active=None, weight=None):
        num_filter = self.channels
        if active is not None:
            if self.slice_out:
                weight = F.slice_axis(weight, axis=0, begin=0, end=active)
                num_filter = active
            if self.slice_in and not self.depthwise:
                weight = F.slice_axis(weight, axis=1, begin=0, end=active)
        if self.depthwise:
            return depthwise_conv(F, x, weight, self.kernel[0], self.strides[0], num_filter,
                                  self.map_size)
        return F.Convolution(x, weight, kernel=self.kernel, stride=self.strides, pad=self.pad,
                             num_filter=num_filter, num_group=1, no_bias=True)


class SE(nn.HybridBlock):
    """Squeeze-and-excitation: GAP, 1x1 C -> make_divisible(C // 4), ReLU, 1x1 back, h-sigmoid."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        squeezed = make_divisible(channels // 4)
        init = mx.init.Normal(0.01)
        with self.name_scope():
            self.pool = nn.GlobalAvgPool2D()
            self.reduce = nn.Conv2D(squeezed, 1, in_channels=channels, weight_initializer=init)
            self.relu = nn.Activation("relu")
            self.expand = nn.Conv2D(channels, 1, in_channels=squeezed, weight_initializer=init)
            self.gate = HardSigmoid()

    def hybrid_forward(self, F, x):
        w = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return F.broadcast_mul(x, w)
