"""ShuffleNetV2 / ShuffleXception choice blocks, stem and tail, shared by subnet and supernet.

The blocks are written once. What differs between a static subnet and the elastic supernet is
the *layer kit* they are built with: :class:`StaticLayers` gives ``nn.Conv2D`` (``DepthwiseConv2D`` for depthwise) and an injected
normalisation layer; :class:`ElasticLayers` gives :class:`ElasticConv2D` and
:class:`NasBatchNorm` stored at maximum width, which a block runs on the first ``active`` mid
channels when called as ``block(x, active)``.
"""
import mxnet as mx
from mxnet import nd
from mxnet.gluon import nn

from ..nn import DepthwiseConv2D, ElasticConv2D, NasBatchNorm, SE, make_activation, make_shuffle
from ..nn.depthwise import GraphPerInputSize
from ..search_space import BLOCK_TYPES, LAST_CONV_CHANNELS, SE_TAIL_CHANNELS, STEM_CHANNELS

__all__ = ["StaticLayers", "ElasticLayers", "ShuffleNetV2Block", "ShuffleXceptionBlock",
           "make_choice_block", "make_stem", "make_tail", "make_head", "stage_activation"]

_BN_BETA_INIT = mx.init.Constant(1e-4)


def _conv_init(in_per_group):
    # docs/design.md, section 2: other conv weights Normal(1 / weight.shape[1]).
    return mx.init.Normal(1.0 / in_per_group)


class StaticLayers:
    """Plain Gluon layers; ``norm_layer`` is injected (``nn.BatchNorm``, ``NasBatchNorm``...)."""

    elastic = False

    def __init__(self, norm_layer=nn.BatchNorm, norm_kwargs=None):
        self.norm_layer = norm_layer
        self.norm_kwargs = dict(norm_kwargs or {})

    def conv(self, in_channels, channels, kernel=1, stride=1, depthwise=False, **_slicing):
        if depthwise:
            return DepthwiseConv2D(channels, kernel, stride, weight_initializer=_conv_init(1))
        return nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2,
                         use_bias=False, in_channels=in_channels,
                         weight_initializer=_conv_init(in_channels))

    def norm(self, channels):
        kwargs = dict(momentum=0.9, epsilon=1e-5, beta_initializer=_BN_BETA_INIT)
        kwargs.update(self.norm_kwargs)
        return self.norm_layer(in_channels=channels, **kwargs)


class ElasticLayers(StaticLayers):
    """Maximum-width layers that can run on a leading slice of their channels."""

    elastic = True

    def __init__(self, norm_kwargs=None):
        super().__init__(NasBatchNorm, norm_kwargs)

    def conv(self, in_channels, channels, kernel=1, stride=1, depthwise=False, slice_in=False,
             slice_out=False):
        return ElasticConv2D(in_channels, channels, kernel, stride, depthwise=depthwise,
                             slice_in=slice_in, slice_out=slice_out,
                             weight_initializer=_conv_init(1 if depthwise else in_channels))


def stage_activation(stage, use_se):
    """ReLU everywhere without SE; with SE stage 0 keeps ReLU and the rest use hard-swish."""
    return "hswish" if use_se and stage > 0 else "relu"


class _ShuffleBlock(GraphPerInputSize, nn.HybridBlock):
    """Shared skeleton: shuffle + split (stride 1) or projection branch (stride 2), a main
    branch built by the subclass, optional SE, concat."""

    def __init__(self, in_channels, out_channels, mid_channels, kernel, stride, act, use_se,
                 layers, shuffle_method="reshape", **kwargs):
        super().__init__(**kwargs)
        if stride not in (1, 2):
            raise ValueError("stride must be 1 or 2, got %r" % (stride,))
        self.stride, self.kernel = stride, kernel
        self.in_channels, self.out_channels, self.mid_channels = (in_channels, out_channels,
                                                                  mid_channels)
        self.proj_channels = in_channels // 2 if stride == 1 else in_channels
        self.elastic = layers.elastic
        main_in = self.proj_channels
        main_out = out_channels - self.proj_channels
        self._sliced = []
        with self.name_scope():
            if stride == 1:
                self.shuffle = make_shuffle(shuffle_method, in_channels)
            else:
                self.proj = nn.HybridSequential(prefix="proj_")
                with self.proj.name_scope():
                    self.proj.add(layers.conv(in_channels, in_channels, kernel, 2, depthwise=True),
                                  layers.norm(in_channels),
                                  layers.conv(in_channels, in_channels),
                                  layers.norm(in_channels),
                                  make_activation(act))
            self.main = nn.HybridSequential(prefix="main_")
            with self.main.name_scope():
                self._build_main(layers, main_in, mid_channels, main_out, act)
            self.se = SE(main_out) if use_se else None

    def set_input_size(self, size):
        """Give every depthwise convolution its input map size; return the block's output size."""
        if self.stride == 2:
            self.proj[0].set_input_size(size)
        for layer in self.main:
            if hasattr(layer, "set_input_size"):
                size = layer.set_input_size(size)
        return size

    def hybridize(self, active=True, **kwargs):
        """An elastic block hybridizes as a whole: one cached graph for full-width passes,
        built for the input map size (cropped depthwise kernels, fast depthwise weight
        gradient). Channel-sliced passes (``block(x, active)``) run imperatively, so its
        layers stay imperative."""
        super().hybridize(active, **kwargs)
        if self.elastic:
            for child in self._children.values():
                child.hybridize(False)

    def forward(self, x, active=None):
        if not (self.elastic and self._active and isinstance(x, nd.NDArray)):
            return super().forward(x, active)
        if active is not None:                       # a sliced width: imperatively
            return self.hybrid_forward(nd, x, active)
        return self._forward_for_input_size(x)

    def _add(self, layer, sliced=False):
        self.main.add(layer)
        self._sliced.append(sliced)

    def split(self, F, x):
        """The block's two branch inputs: ``(projection branch output, main branch input)``."""
        if self.stride == 1:
            x = self.shuffle(x)
            return (F.slice_axis(x, axis=1, begin=0, end=self.proj_channels),
                    F.slice_axis(x, axis=1, begin=self.proj_channels, end=None))
        return self.proj(x), x

    def hybrid_forward(self, F, x, active=None):
        proj, main = self.split(F, x)
        for layer, sliced in zip(self.main, self._sliced):
            main = layer(main, active) if sliced and active is not None else layer(main)
        if self.se is not None:
            main = self.se(main)
        return F.concat(proj, main, dim=1)


class ShuffleNetV2Block(_ShuffleBlock):
    """1x1 -> m, BN, act, kxk depthwise, BN, 1x1 m -> out, BN, act."""

    def _build_main(self, layers, c_in, mid, c_out, act):
        self._add(layers.conv(c_in, mid, slice_out=True), True)
        self._add(layers.norm(mid), True)
        self._add(make_activation(act))
        self._add(layers.conv(mid, mid, self.kernel, self.stride, depthwise=True), True)
        self._add(layers.norm(mid), True)
        self._add(layers.conv(mid, c_out, slice_in=True), True)
        self._add(layers.norm(c_out))
        self._add(make_activation(act))


class ShuffleXceptionBlock(_ShuffleBlock):
    """Three (3x3 depthwise, BN, 1x1, BN, act) units; the first depthwise carries the stride."""

    def _build_main(self, layers, c_in, mid, c_out, act):
        self._add(layers.conv(c_in, c_in, 3, self.stride, depthwise=True))
        self._add(layers.norm(c_in))
        self._add(layers.conv(c_in, mid, slice_out=True), True)
        self._add(layers.norm(mid), True)
        self._add(make_activation(act))
        self._add(layers.conv(mid, mid, 3, 1, depthwise=True), True)
        self._add(layers.norm(mid), True)
        self._add(layers.conv(mid, mid, slice_in=True, slice_out=True), True)
        self._add(layers.norm(mid), True)
        self._add(make_activation(act))
        self._add(layers.conv(mid, mid, 3, 1, depthwise=True), True)
        self._add(layers.norm(mid), True)
        self._add(layers.conv(mid, c_out, slice_in=True), True)
        self._add(layers.norm(c_out))
        self._add(make_activation(act))


def make_choice_block(block_choice, in_channels, out_channels, mid_channels, stride, act,
                      use_se, layers, shuffle_method="reshape", prefix=None):
    """Build choice ``block_choice`` (index into ``BLOCK_TYPES``)."""
    name, kernel = BLOCK_TYPES[block_choice]
    cls = ShuffleXceptionBlock if name.startswith("SXB") else ShuffleNetV2Block
    return cls(in_channels, out_channels, mid_channels, kernel, stride, act, use_se, layers,
               shuffle_method, prefix=prefix)


def make_stem(layers, use_se):
    """3x3 stride-2 conv to 16 channels, BN, activation (hard-swish with SE)."""
    stem = nn.HybridSequential(prefix="stem_")
    with stem.name_scope():
        conv = layers.conv(3, STEM_CHANNELS, 3, 2)
        conv.weight.init = mx.init.Normal(0.01)
        stem.add(conv, layers.norm(STEM_CHANNELS), make_activation("hswish" if use_se else "relu"))
    return stem


def make_tail(layers, in_channels, use_se, last_conv_after_pooling):
    """The three tail variants of docs/design.md (section 2), ending with a pooled 1024-wide
    feature."""
    act = "hswish" if use_se else "relu"
    init = mx.init.Normal(0.01)
    tail = nn.HybridSequential(prefix="tail_")
    with tail.name_scope():
        if last_conv_after_pooling:
            tail.add(nn.GlobalAvgPool2D(),
                     nn.Conv2D(LAST_CONV_CHANNELS, 1, in_channels=in_channels,
                               weight_initializer=init),
                     make_activation(act))
        elif use_se:
            conv = layers.conv(in_channels, SE_TAIL_CHANNELS)
            conv.weight.init = init
            tail.add(conv, layers.norm(SE_TAIL_CHANNELS), make_activation(act),
                     nn.GlobalAvgPool2D(), SE(SE_TAIL_CHANNELS),
                     nn.Conv2D(LAST_CONV_CHANNELS, 1, in_channels=SE_TAIL_CHANNELS,
                               weight_initializer=init),
                     make_activation(act))
        else:
            conv = layers.conv(in_channels, LAST_CONV_CHANNELS)
            conv.weight.init = init
            tail.add(conv, layers.norm(LAST_CONV_CHANNELS), make_activation("relu"),
                     nn.GlobalAvgPool2D())
    return tail


def make_head(classes, use_se):
    """Dropout (0.2 with SE, else 0.1), 1x1 conv classifier with bias, flatten."""
    head = nn.HybridSequential(prefix="head_")
    with head.name_scope():
        head.add(nn.Dropout(0.2 if use_se else 0.1),
                 nn.Conv2D(classes, 1, in_channels=LAST_CONV_CHANNELS,
                           weight_initializer=mx.init.Normal(0.01)),
                 nn.Flatten())
    return head
