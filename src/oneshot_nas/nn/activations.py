"""Hard-sigmoid / hard-swish activations (MobileNetV3) and an activation factory."""
from mxnet.gluon import nn

__all__ = ["HardSigmoid", "HardSwish", "make_activation"]


# MXNet's fused hard_sigmoid computes clip(alpha * x + beta, 0, 1), which with alpha = 1/6 and
# beta = 1/2 is clip(x + 3, 0, 6) / 6 in one op (forward and backward) instead of three.
_HSIG = dict(alpha=1.0 / 6.0, beta=0.5)


class HardSigmoid(nn.HybridBlock):
    """``clip(x + 3, 0, 6) / 6``."""

    def hybrid_forward(self, F, x):
        return F.hard_sigmoid(x, **_HSIG)


class HardSwish(nn.HybridBlock):
    """``x * hard_sigmoid(x)``."""

    def hybrid_forward(self, F, x):
        return x * F.hard_sigmoid(x, **_HSIG)


def make_activation(name):
    """``'relu'`` or ``'hswish'`` -> a HybridBlock."""
    if name == "relu":
        return nn.Activation("relu")
    if name == "hswish":
        return HardSwish()
    raise ValueError("unknown activation %r; choose 'relu' or 'hswish'" % (name,))
