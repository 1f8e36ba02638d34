"""The elastic weight-sharing supernet ``ShuffleNasOneShot`` (block + channel selection).

Each of the 20 positions owns the four choice blocks at maximum mid width. A forward pass runs
the path set by :meth:`ShuffleNasOneShot.set_architecture`: one choice block per position, run
on the first ``mid_channels`` of its searched channels (only that slice is computed). The
supernet hands out standalone static subnets with sliced weights via :meth:`get_subnet`.
"""
import logging
import re

import mxnet as mx
from mxnet import nd
from mxnet.gluon import nn

from ..nn import NasBatchNorm, iter_blocks, sync_bn_statistics
from ..search_space import NUM_BLOCK_CHOICES, SE_FIRST_BLOCK, Architecture, block_layout
from .blocks import ElasticLayers, make_choice_block, make_head, make_stem, make_tail, \
    stage_activation
from .subnet import ShuffleNasOneShotFix

__all__ = ["ShuffleNasOneShot"]

logger = logging.getLogger(__name__)


class _ChoicePosition(nn.Block):
    """The four choice blocks of one position, at maximum width."""

    def __init__(self, in_c, out_c, stride, act, use_se, layers, shuffle_method, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.choices = nn.HybridSequential(prefix="choices_")
            with self.choices.name_scope():
                for b in range(NUM_BLOCK_CHOICES):
                    self.choices.add(make_choice_block(b, in_c, out_c, out_c, stride, act,
                                                       use_se, layers, shuffle_method))

    def forward(self, x, block_choice, active, use_all_blocks=False):
        if use_all_blocks:
            outs = [blk(x, active) for blk in self.choices]
            return nd.add_n(*outs) / len(outs)
        return self.choices[block_choice](x, active)


class ShuffleNasOneShot(nn.Block):
    """Weight-sharing supernet of docs/design.md, section 3.

    Parameters
    ----------
    channels_layout, use_se, last_conv_after_pooling, classes, input_size, shuffle_method
        As for :class:`ShuffleNasOneShotFix`.
    use_all_blocks : bool
        Average the outputs of all four choice blocks of every position.
    affine_free_bn : bool
        BatchNorm without trainable gamma / beta in the choice blocks (the official SPOS supernet):
        they stay 1 / 0, so extracted subnets normalise the same way.
    norm_kwargs : dict, optional
        Extra keyword arguments of every NasBatchNorm.
    """

    def __init__(self, channels_layout="OneShot", use_se=False, last_conv_after_pooling=False,
                 classes=1000, input_size=224, use_all_blocks=False, shuffle_method="reshape",
                 norm_kwargs=None, affine_free_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(channels_layout=channels_layout, use_se=use_se,
                           last_conv_after_pooling=last_conv_after_pooling, classes=classes,
                           input_size=input_size, shuffle_method=shuffle_method)
        self.use_all_blocks = use_all_blocks
        self.norm_kwargs = norm_kwargs
        layers = ElasticLayers(norm_kwargs)
        self._layout = block_layout(channels_layout)
        with self.name_scope():
            self.stem = make_stem(layers, use_se)
            self.blocks = nn.Sequential(prefix="blocks_")
            with self.blocks.name_scope():
                for i, (stage, in_c, out_c, stride) in enumerate(self._layout):
                    self.blocks.add(_ChoicePosition(in_c, out_c, stride,
                                                    stage_activation(stage, use_se),
                                                    use_se and i >= SE_FIRST_BLOCK, layers,
                                                    shuffle_method))
            self.tail = make_tail(layers, self._layout[-1][2], use_se, last_conv_after_pooling)
            self.head = make_head(classes, use_se)
        self.affine_free_bn = affine_free_bn
        if affine_free_bn:
            for position in self.blocks:
                for bn in iter_blocks(position):
                    if isinstance(bn, NasBatchNorm):
                        bn.gamma.init, bn.beta.init = mx.init.One(), mx.init.Zero()
                        bn.gamma.grad_req = bn.beta.grad_req = "null"
        self.set_architecture(Architecture.largest())

    # -- path selection ------------------------------------------------------------------------
    def set_architecture(self, architecture):
        """Use ``architecture`` for the following forward passes."""
        if not isinstance(architecture, Architecture):
            raise TypeError("set_architecture needs an Architecture, got %r" % (architecture,))
        self.architecture = architecture
        # None = full width: the unsliced (in-place statistics) path of every layer.
        self._active = [None if m == out_c else m for m, (_, _, out_c, _)
                        in zip(architecture.mid_channels(self.config["channels_layout"]),
                               self._layout)]

    def forward(self, x):
        x = self.stem(x)
        for position, block_choice, active in zip(self.blocks, self.architecture.blocks,
                                                  self._active):
            x = position(x, block_choice, active, self.use_all_blocks)
        return self.head(self.tail(x))

    def hybridize(self, active=True, **kwargs):
        """Hybridize the stem, tail and head, and every choice block with a cached graph of
        its own for full-width passes (sliced widths run imperatively); the path itself is
        chosen in Python at every batch."""
        for part in (self.stem, self.tail, self.head):
            part.hybridize(active, **kwargs)
        # no static memory per block graph: 80 graphs would each keep their own buffers
        flags = {k: v for k, v in kwargs.items() if k not in ("static_alloc", "static_shape")}
        for position in self.blocks:
            position.choices.hybridize(active, **flags)

    # -- weights ---------------------------------------------------------------------------------
    def sync_bn_statistics(self):
        """Flush the running statistics updated by sliced training steps (see NasBatchNorm)."""
        sync_bn_statistics(self)

    def save_parameters(self, filename, deduplicate=False):
        self.sync_bn_statistics()
        super().save_parameters(filename, deduplicate=deduplicate)

    def get_subnet(self, architecture=None, norm_layer=NasBatchNorm, norm_kwargs=None, ctx=None):
        """A standalone :class:`ShuffleNasOneShotFix` with this supernet's weights.

        Conv weights and BN parameters / running statistics are sliced to the subnet's widths,
        so ``get_subnet(a)(x)`` equals ``set_architecture(a); self(x)`` in inference mode.

        Parameters
        ----------
        architecture : Architecture, optional
            Defaults to the current one.
        norm_layer : type
            ``NasBatchNorm`` (default, can be recalibrated) or ``nn.BatchNorm``.
        ctx : Context or list, optional
            Defaults to the contexts of the supernet's parameters.
        """
        architecture = architecture or self.architecture
        self.sync_bn_statistics()
        subnet = ShuffleNasOneShotFix(architecture, norm_layer=norm_layer,
                                      norm_kwargs=norm_kwargs, **self.config)
        source = self._collect_params_with_prefix()
        ctx = ctx or next(iter(source.values())).list_ctx()
        ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
        for name, param in subnet._collect_params_with_prefix().items():
            src_name = re.sub(r"^blocks\.(\d+)\.",
                              lambda m: "blocks.%s.choices.%d." % (
                                  m.group(1), architecture.blocks[int(m.group(1))]), name)
            # via numpy: MKLDNN may hold the source weight in a blocked layout that cannot be
            # sliced in place. On several devices: the first one's copy (its BN statistics,
            # the ones the trainer saves), whatever the current default context
            src = source[src_name].list_data()[0].asnumpy()
            # load directly: no random initialisation that would be overwritten anyway
            param._load_init(nd.array(src[tuple(slice(0, n) for n in param.shape)],
                                      dtype=src.dtype), ctx)
        return subnet
