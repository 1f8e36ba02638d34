"""The static (fixed-architecture) subnet ``ShuffleNasOneShotFix``: hybridizable, exportable."""
import mxnet as mx
from mxnet.gluon import nn

from ..nn.depthwise import GraphPerInputSize, conv_output_size

from ..search_space import Architecture, block_layout, mid_channels, SE_FIRST_BLOCK
from .blocks import StaticLayers, make_choice_block, make_head, make_stem, make_tail, \
    stage_activation

__all__ = ["ShuffleNasOneShotFix"]


class ShuffleNasOneShotFix(GraphPerInputSize, nn.HybridBlock):
    """One subnet of the search space with plain layers.

    Parameters
    ----------
    architecture : Architecture
    channels_layout : {'OneShot', 'ShuffleNetV2+'}
    use_se : bool
        SE in stages 2-3, hard-swish activations (docs/design.md, section 2).
    last_conv_after_pooling : bool
        MobileNetV3-style tail.
    classes : int
    input_size : int
        Recorded for export and profiling; the network itself is size agnostic.
    norm_layer : type
        Normalisation layer (``nn.BatchNorm`` by default, ``NasBatchNorm`` for recalibration).
    norm_kwargs : dict, optional
    shuffle_method : {'reshape', 'conv'}
    """

    def __init__(self, architecture, channels_layout="OneShot", use_se=False,
                 last_conv_after_pooling=False, classes=1000, input_size=224,
                 norm_layer=nn.BatchNorm, norm_kwargs=None, shuffle_method="reshape", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(architecture, Architecture):
            raise TypeError("architecture must be an Architecture, got %r" % (architecture,))
        self.architecture = architecture
        self.config = dict(channels_layout=channels_layout, use_se=use_se,
                           last_conv_after_pooling=last_conv_after_pooling, classes=classes,
                           input_size=input_size, shuffle_method=shuffle_method)
        layers = StaticLayers(norm_layer, norm_kwargs)
        layout = block_layout(channels_layout)
        with self.name_scope():
            self.stem = make_stem(layers, use_se)
            self.blocks = nn.HybridSequential(prefix="blocks_")
            with self.blocks.name_scope():
                for i, (stage, in_c, out_c, stride) in enumerate(layout):
                    self.blocks.add(make_choice_block(
                        architecture.blocks[i], in_c, out_c,
                        mid_channels(out_c, architecture.channels[i]), stride,
                        stage_activation(stage, use_se), use_se and i >= SE_FIRST_BLOCK,
                        layers, shuffle_method))
            self.tail = make_tail(layers, layout[-1][2], use_se, last_conv_after_pooling)
            self.head = make_head(classes, use_se)

    def set_input_size(self, size):
        """Give every depthwise convolution its input map size for an ``size`` (H, W) input."""
        size = tuple(conv_output_size(s, 3, 2, 1) for s in size)       # the stride-2 stem
        for block in self.blocks:
            size = block.set_input_size(size)
        return size

    def forward(self, x, *args):
        """Hybridized, the cached graph is built for the input's map size: depthwise kernels
        cropped to maps smaller than them and the fast depthwise weight gradient
        (:mod:`oneshot_nas.nn.depthwise`); a new map size rebuilds it."""
        if not (self._active and isinstance(x, mx.nd.NDArray)):
            return super().forward(x, *args)
        return self._forward_for_input_size(x, *args)

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Export the plain graph (full kernels, no custom operator), valid at every input size,
        whatever graph training specialised."""
        if not self._cached_graph:
            return super().export(path, epoch, remove_amp_cast)    # raises Gluon's error
        specialised = self._cached_graph
        # the class's own symbolic pass (not ``self(...)``, which may be wrapped)
        plain = nn.HybridBlock.forward(self, mx.sym.var("data"))
        self._cached_graph = (specialised[0], plain)
        try:
            return super().export(path, epoch, remove_amp_cast)
        finally:
            self._cached_graph = specialised

    def hybrid_forward(self, F, x):
        return self.head(self.tail(self.blocks(self.stem(x))))
