"""One FLOPs / params counter for every caller: samplers, searches, tables, checks.

Counts are in ImageNet units (224 px, 1000 classes) without ReLU and BN, the convention of
every FLOPs constraint, whatever the training resolution: ``--max-flops 300`` means the same
network size on every data set.
"""
import numpy as np

from ..config import ModelConfig, piece_values
from ..search_space import Architecture
from .api import METHODS, count_flops_params
from .lookup_table import LookupTable

__all__ = ["FlopsCounter"]


class FlopsCounter:
    """MFLOPs and M params of architectures of one supernet shape.

    ``counter(blocks, channels)`` counts a population (int arrays of shape ``(n, 20)``) and
    returns two float arrays; ``counter.one(arch)`` counts one architecture and returns two
    floats.

    Parameters
    ----------
    many : callable
        ``(blocks, channels) -> (mflops array, mparams array)``.
    """

    def __init__(self, many):
        self._many = many

    @classmethod
    def for_model(cls, model, method="lookup_table", progress=False, **options):
        """The counter of a model configuration (a :class:`~oneshot_nas.config.ModelConfig`
        or a saved configuration dict): the lookup table (loaded or built once) or, with
        ``method='symbol'``, a symbolic count of every architecture (slow; a cross-check).
        ``options`` go to :meth:`LookupTable.load_or_build` (``cache_dir``)."""
        if method == "lookup_table":
            table = LookupTable.from_config(model, progress=progress, **options)
            return cls(table.flops_params_many)
        if method == "symbol":
            settings = piece_values(model, ModelConfig)

            def by_symbol(blocks, channels):
                out = [count_flops_params(Architecture(b, c), method="symbol", input_size=224,
                                          classes=1000, **settings)
                       for b, c in zip(blocks, channels)]
                return np.array([o[0] for o in out]), np.array([o[1] for o in out])
            return cls(by_symbol)
        raise ValueError("unknown FLOPs / params method %r; choose one of %s"
                         % (method, ", ".join(METHODS)))

    @classmethod
    def wrap(cls, counter):
        """``counter`` as a :class:`FlopsCounter` (a plain vectorised function is wrapped)."""
        return counter if isinstance(counter, cls) else cls(counter)

    def __call__(self, blocks, channels):
        flops, params = self._many(np.asarray(blocks), np.asarray(channels))
        return np.asarray(flops, dtype=float), np.asarray(params, dtype=float)

    def one(self, arch):
        """``(MFLOPs, M params)`` of one architecture."""
        flops, params = self(np.array([arch.blocks]), np.array([arch.channels]))
        return float(flops[0]), float(params[0])
