"""oneshot_nas: Single Path One-Shot NAS (block + channel selection) in MXNet Gluon."""
from .search_space import Architecture
from .models import ShuffleNasOneShot, ShuffleNasOneShotFix, get_model, list_models
from .nn import NasBatchNorm, bn_recalibration, recalibrate_bn

__version__ = "0.1.0"
__all__ = ["Architecture", "ShuffleNasOneShot", "ShuffleNasOneShotFix", "get_model",
           "list_models", "NasBatchNorm", "bn_recalibration", "recalibrate_bn"]
