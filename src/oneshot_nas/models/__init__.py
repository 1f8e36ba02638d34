"""Model library: blocks, static subnet, elastic supernet, registry."""
from .subnet import ShuffleNasOneShotFix
from .supernet import ShuffleNasOneShot
from .zoo import PRESETS, get_model, list_models
