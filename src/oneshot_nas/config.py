"""Configuration pieces the training, search and ranking settings are made of.

Each field here is declared once, with one default. :class:`~oneshot_nas.training.TrainConfig`,
:class:`~oneshot_nas.search.runner.SearchConfig`, the ranking checks' configurations and
:class:`~oneshot_nas.ranking.StandaloneProtocol` are dataclasses built from these pieces. They
take them as bases, so that their fields stay flat: one field per command-line flag, and the
JSON an earlier version wrote beside a supernet or into a search checkpoint keeps its keys.

Each piece builds its collaborator once: :meth:`DataConfig.split_loaders`,
:meth:`DeviceConfig.contexts`, :meth:`ModelConfig.model_settings` (the keyword arguments of the
supernet, its lookup table and its latency table);
:meth:`~oneshot_nas.search.algorithms.Constraints.from_config` and
:meth:`~oneshot_nas.profiling.LookupTable.from_config` read a :class:`ConstraintConfig` and a
:class:`ModelConfig`.
"""
from dataclasses import dataclass, fields
from typing import Optional

from . import data
from .machine import resolve_contexts

__all__ = ["DataConfig", "DeviceConfig", "ModelConfig", "ConstraintConfig", "piece_values",
           "checked_fields"]


@dataclass
class DataConfig:
    """Where the images come from and the input they are turned into."""

    dataset: str = "imagenet"            # imagenet | digits | fashion-mnist | synthetic
    data_dir: Optional[str] = None
    use_rec: bool = False
    rec_train: Optional[str] = None
    rec_train_idx: Optional[str] = None
    rec_val: Optional[str] = None
    rec_val_idx: Optional[str] = None
    num_workers: int = 4
    input_size: int = 224
    crop_ratio: float = 0.875
    train_subset: int = 0                # fashion-mnist: stratified training subset (0 = all)

    def split_loaders(self, **settings):
        """:func:`oneshot_nas.data.make_split_loaders` with these fields; ``settings`` adds
        the caller's own (``batch_size``, ``augment``, ``holdout``, ``seed``, ...)."""
        values = piece_values(self, DataConfig)
        values["use_rec"] = values["use_rec"] or None     # None: decided by the data set
        values.update(settings)
        return data.make_split_loaders(**values)


@dataclass
class DeviceConfig:
    """The devices of this machine a command runs on."""

    num_gpus: int = 0
    devices: Optional[str] = None        # e.g. "cpu:0,cpu:1" or "gpu:2,gpu:3" (replaces num_gpus)

    def contexts(self):
        """The MXNet contexts of ``devices``, else of ``num_gpus``."""
        return resolve_contexts(self.devices, self.num_gpus)


@dataclass
class ModelConfig:
    """The supernet's shape: what its weights, lookup table and latency table depend on."""

    channels_layout: str = "OneShot"
    use_se: bool = False
    last_conv_after_pooling: bool = False

    def model_settings(self):
        """``{'channels_layout': ..., 'use_se': ..., 'last_conv_after_pooling': ...}``."""
        return piece_values(self, ModelConfig)

    def set_model(self, other):
        """Take the model fields of ``other`` (a configuration or a saved dict)."""
        for name, value in piece_values(other, ModelConfig).items():
            setattr(self, name, value)


@dataclass
class ConstraintConfig:
    """Limits of the search space in MFLOPs / M params at 224 px and 1000 classes: absolute,
    or relative to a comparison model."""

    max_flops: Optional[float] = None
    max_params: Optional[float] = None
    comparison_model: Optional[str] = None
    flop_max: Optional[float] = None
    param_max: Optional[float] = None
    normalised_score_max: Optional[float] = None


def piece_values(values, piece):
    """The fields of ``piece`` (a piece class) from a configuration, or from a configuration
    dict saved by an earlier run (a field it lacks takes the piece's default)."""
    if isinstance(values, dict):
        return {f.name: values.get(f.name, f.default) for f in fields(piece)}
    return {f.name: getattr(values, f.name) for f in fields(piece)}


def checked_fields(cls, values, what):
    """``values`` as keyword arguments of the dataclass ``cls``; ValueError in one line naming
    every field ``cls`` does not have (``what``: e.g. ``'training setting'``)."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError("unknown %s(s): %s" % (what, ", ".join(unknown)))
    return dict(values)
