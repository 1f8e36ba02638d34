"""Channel shuffle: the reshape form and a 1x1-convolution form that quantizes better.

Both produce the channel order of docs/design.md (section 2): reshape to (N, 2, C/2, H, W),
swap axes 1 and
2, reshape back. The convolution form multiplies by a fixed permutation matrix, so MKLDNN can
quantize it like any other convolution instead of falling back to float for reshape/transpose.
"""
import numpy as np
import mxnet as mx
from mxnet.gluon import nn

__all__ = ["ShuffleReshape", "ShuffleConv", "make_shuffle", "shuffle_permutation"]


def shuffle_permutation(channels):
    """Source channel index for every output channel of the shuffle."""
    return np.arange(channels).reshape(2, channels // 2).T.reshape(-1)


class ShuffleReshape(nn.HybridBlock):
    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def hybrid_forward(self, F, x):
        x = F.reshape(x, shape=(0, -4, 2, -1, -2))
        x = F.swapaxes(x, 1, 2)
        return F.reshape(x, shape=(0, -3, -2))


class ShuffleConv(nn.HybridBlock):
    """Shuffle as a 1x1 convolution with a constant permutation weight (no gradient)."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        perm = shuffle_permutation(channels)
        weight = np.zeros((channels, channels, 1, 1), dtype="float32")
        weight[np.arange(channels), perm, 0, 0] = 1.0
        with self.name_scope():
            self.weight = self.params.get_constant("weight", mx.nd.array(weight))

    def hybrid_forward(self, F, x, weight):
        return F.Convolution(x, weight, kernel=(1, 1), num_filter=self.channels, no_bias=True)


def make_shuffle(method, channels):
    if method == "reshape":
        return ShuffleReshape(channels)
    if method == "conv":
        return ShuffleConv(channels)
    raise ValueError("unknown shuffle method %r; choose 'reshape' or 'conv'" % (method,))
