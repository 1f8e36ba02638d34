"""Hard-sigmoid / hard-swish activations (MobileNetV3) and an activation factory."""
from mxnet.gluon import nn

__all__ = ["HardSigmoid", "HardSwish", "make_activation"]


class HardSigmoid(nn.HybridBlock):
    """``clip(x + 3, 0, 6) / 6``."""

    def hybrid_forward(self, F, x):
        return F.clip(x + 3.0, 0.0, 6.0) / 6.0


class HardSwish(nn.HybridBlock):
    """``x * hard_sigmoid(x)``."""

    def hybrid_forward(self, F, x):
        return x * (F.clip(x + 3.0, 0.0, 6.0) / 6.0)


def make_activation(name):
    """``'relu'`` or ``'hswish'`` -> a HybridBlock."""
    if name == "relu":
        return nn.Activation("relu")
    if name == "hswish":
        return HardSwish()
    raise ValueError("unknown activation %r; choose 'relu' or 'hswish'" % (name,))
