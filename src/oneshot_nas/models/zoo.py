"""Model registry: ``get_model(name, **kwargs)`` and the preset table of docs/design.md
(section 5)."""
from ..search_space import Architecture
from .subnet import ShuffleNasOneShotFix
from .supernet import ShuffleNasOneShot

__all__ = ["get_model", "list_models", "PRESETS"]

_ONESHOT = ("0,0,3,1,1,1,0,0,2,0,2,1,1,0,2,0,2,1,3,2",
            "6,5,3,5,2,6,3,4,2,5,7,5,4,6,7,4,4,5,4,3")
_ONESHOT_S_PLUS = ("0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0",
                   "8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6")

# name -> (architecture strings, default keyword arguments)
PRESETS = {
    "OneShot": (_ONESHOT, dict(use_se=False, last_conv_after_pooling=False)),
    "OneShot+": (_ONESHOT, dict(use_se=True, last_conv_after_pooling=True)),
    "OneShot-S+": (_ONESHOT_S_PLUS, dict(use_se=True, last_conv_after_pooling=True)),
}


def _fix_arch(architecture=None, block_choices=None, channel_choices=None, **kwargs):
    if architecture is None:
        if block_choices is None:
            raise ValueError("ShuffleNas_fixArch needs architecture= or block_choices= "
                             "(and channel_choices=)")
        architecture = Architecture.parse(block_choices, channel_choices)
    elif isinstance(architecture, str):
        architecture = Architecture.from_json(architecture)
    return ShuffleNasOneShotFix(architecture, **kwargs)


def _preset(name):
    (blocks, channels), defaults = PRESETS[name]

    def build(**kwargs):
        return ShuffleNasOneShotFix(Architecture.parse(blocks, channels),
                                    **dict(defaults, **kwargs))
    build.__name__ = "build_" + name
    return build


_models = {
    "ShuffleNas": ShuffleNasOneShot,
    "ShuffleNas_fixArch": _fix_arch,
}
_models.update({name: _preset(name) for name in PRESETS})


def list_models():
    """Names accepted by :func:`get_model`."""
    return sorted(_models)


def get_model(name, **kwargs):
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    **kwargs
        Passed to the model (``channels_layout``, ``use_se``, ``classes``, ``input_size``...).
    """
    try:
        factory = _models[name]
    except KeyError:
        raise ValueError("unknown model %r; known models: %s"
                         % (name, ", ".join(list_models()))) from None
    return factory(**kwargs)
