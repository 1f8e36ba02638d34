"""One entry point for FLOPs / params of an architecture, shared by the trainer and the search."""
import logging

from .lookup_table import LookupTable, _normalise_config
from .symbolic import build_symbol, count_symbol

__all__ = ["count_flops_params", "METHODS"]

log = logging.getLogger(__name__)

METHODS = ("lookup_table", "symbol")
_TABLES = {}


def _table(config, cache_dir=None):
    key = (tuple(sorted(config.items())), cache_dir)
    if key not in _TABLES:
        _TABLES[key] = LookupTable.load_or_build(cache_dir=cache_dir, **config)
    return _TABLES[key]


def count_flops_params(architecture, method="lookup_table", relu_bn=False, cache_dir=None,
                       **model_config):
    """MFLOPs and millions of params of one subnet.

    Parameters
    ----------
    architecture : Architecture
    method : {'lookup_table', 'symbol'}
        ``lookup_table`` (default) sums cached per-block counts (microseconds after the first
        call of a configuration); ``symbol`` builds the subnet's graph and counts it.
        Both give identical figures.
    relu_bn : bool
        Also count ReLU and BN (default ``False``: the convention of every FLOPs constraint).
    cache_dir : str, optional
        Lookup-table cache directory (default ``$ONESHOT_NAS_CACHE`` or
        ``~/.cache/oneshot_nas``).
    **model_config
        ``channels_layout``, ``use_se``, ``last_conv_after_pooling``, ``input_size``,
        ``classes``.

    Returns
    -------
    (float, float)
        ``(mflops, mparams)``.

    Raises
    ------
    ValueError
        Unknown ``method``; ``TypeError`` for an unknown configuration key.
    """
    config = _normalise_config(model_config)
    if method == "lookup_table":
        return _table(config, cache_dir).flops_params(architecture, relu_bn=relu_bn)
    if method == "symbol":
        count = count_symbol(build_symbol(architecture, **config),
                             {"data": (1, 3, config["input_size"], config["input_size"])},
                             relu_bn=relu_bn)
        return count.mflops, count.mparams
    raise ValueError("unknown FLOPs / params method %r; choose one of %s"
                     % (method, ", ".join(METHODS)))
