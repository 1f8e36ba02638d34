"""The stand-alone protocol (the ranking's ground truth) and its cache of finished runs.

A :class:`StandaloneProtocol` fixes everything that changes a stand-alone result: data set,
training images, epochs, optimiser, model flags. :func:`train_standalone` trains one
architecture with it through the project's trainer (one run per seed) and records the final
test top-1 and cross-entropy, the curve of the validated epochs and the time; a
:class:`StandaloneCache` keeps finished runs in a JSON file keyed by protocol, architecture and
seed, so a rerun trains nothing twice. Several processes may share one cache file: every write
takes a file lock, merges with what is on disk and replaces the file atomically.
"""
import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..config import ModelConfig, checked_fields
from ..data import default_input_size
from ..files import atomic_write_json, nan_for_null
from ..training import TrainConfig, train

__all__ = ["StandaloneProtocol", "StandaloneCache", "train_standalone", "run_record"]

logger = logging.getLogger(__name__)


@dataclass
class StandaloneProtocol(ModelConfig):
    """One fixed stand-alone recipe: the ranking's ground truth.

    Accuracy = top-1 on the validation split (the official test file for Fashion-MNIST) after
    the last epoch (never the best epoch), averaged over ``seeds``.

    The defaults are the digits recipe of the digits ranking check. Measured on the 2-core
    machine (1,078 training images, batch 64, NAG, cosine; OneShot layout with SE and last
    conv after pooling; seeds 0 / 1): 3 epochs leave these nets anywhere between 10 % and 83 %
    (they sit at chance for 2-3 epochs and leave it at a random moment); 6 epochs, lr 0.1,
    1 warm-up epoch reach 93-97.5 %, the two seeds of one architecture 1-4 points apart and
    four architectures from all-0.2x to all-2.0x within 3 points: digits cannot rank
    architectures. The Fashion-MNIST protocol of the stored table is
    :meth:`fashion_mnist`; ``docs/ranking.md`` says how it was chosen.

    The model fields (``channels_layout``, ``use_se``, ``last_conv_after_pooling``) are those
    of :class:`~oneshot_nas.config.ModelConfig`, with its defaults; the ranking and winner
    checks set them to the supernet's (:meth:`~oneshot_nas.config.ModelConfig.set_model`), the
    Fashion-MNIST protocol has SE and the last conv after pooling.
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.1
    wd: float = 4e-5
    warmup_epochs: int = 1
    optimizer: str = "nag"
    augment: bool = True
    seeds: tuple = (0, 1)
    holdout: int = 0
    max_batches_per_epoch: int = 0       # tests only
    dataset: str = "digits"
    train_subset: int = 0                # fashion-mnist: stratified training images (0: all)
    val_interval: int = 0                # 0: validate after the last epoch only
    label_smoothing: bool = False
    input_size: int = 0                  # px; 0: the data set's default (32 for digits and
    #                                      Fashion-MNIST); left out of the stored settings when 0,
    #                                      so that tables and caches made before it keep their keys

    @classmethod
    def fashion_mnist(cls, **overrides):
        """The protocol of the stored Fashion-MNIST table (``docs/ranking.md``)."""
        values = dict(dataset="fashion-mnist", train_subset=10000, epochs=8, batch_size=64,
                      lr=0.1, wd=4e-5, warmup_epochs=1, optimizer="nag", augment=True,
                      seeds=(0,), val_interval=4, use_se=True, last_conv_after_pooling=True)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`; unknown fields are refused in one line."""
        values = checked_fields(cls, values, "stand-alone protocol field")
        if "seeds" in values:
            values["seeds"] = tuple(int(s) for s in values["seeds"])
        return cls(**values)

    def to_dict(self):
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        if not out["input_size"]:
            del out["input_size"]
        return out

    @property
    def image_size(self):
        """The input size in pixels (``input_size``, else the data set's default)."""
        return self.input_size or default_input_size(self.dataset)

    def settings(self):
        """Everything that changes one run's result (the seeds list does not)."""
        return {k: v for k, v in self.to_dict().items() if k != "seeds"}

    def key(self, arch, seed):
        """Cache key: everything that changes the result."""
        return json.dumps({"protocol": self.settings(), "arch": json.loads(arch.to_json()),
                           "seed": int(seed)}, sort_keys=True)

    def train_config(self, arch, seed, num_workers=0):
        """The :class:`~oneshot_nas.training.TrainConfig` of one stand-alone run."""
        return TrainConfig(
            dataset=self.dataset, input_size=self.image_size,
            batch_size=self.batch_size, num_workers=num_workers,
            model="ShuffleNas_fixArch", block_choices=arch.block_string(),
            channel_choices=arch.channel_string(), **self.model_settings(),
            num_epochs=self.epochs, lr=self.lr, wd=self.wd, optimizer=self.optimizer,
            lr_mode="cosine", warmup_epochs=self.warmup_epochs, no_wd=True,
            no_augment=not self.augment, holdout_search=self.holdout, seed=int(seed),
            train_subset=self.train_subset, val_interval=self.val_interval or self.epochs,
            label_smoothing=self.label_smoothing,
            save_dir="", metrics_file=None, progress=False, log_interval=0,
            max_batches_per_epoch=self.max_batches_per_epoch)


class StandaloneCache:
    """Finished stand-alone runs in a JSON file ``{"runs": {key: record}}``.

    Every :meth:`put` locks ``path + '.lock'``, re-reads the file, adds the record and replaces
    the file atomically, so that worker processes sharing the file never lose a run.
    """

    def __init__(self, path):
        self.path = path
        self.runs = self._read() if path else {}
        if self.runs:
            logger.info("stand-alone cache %s: %d finished runs", path, len(self.runs))

    def _read(self):
        if not os.path.isfile(self.path):
            return {}
        try:
            with open(self.path) as f:
                return {key: run_from_json(record)
                        for key, record in json.load(f).get("runs", {}).items()}
        except (OSError, ValueError, AttributeError):
            logger.warning("ignoring unreadable stand-alone cache %s", self.path)
            return {}

    @contextlib.contextmanager
    def _locked(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def refresh(self):
        """Take in runs other processes have written since."""
        if self.path:
            self.runs.update(self._read())
        return self

    def get(self, key):
        return self.runs.get(key)

    def put(self, key, record):
        self.runs[key] = record
        if not self.path:
            return
        with self._locked():
            merged = self._read()
            merged.update(self.runs)
            self.runs = merged
            atomic_write_json(self.path, {"runs": merged}, indent=1, sort_keys=True)


_FIGURES = ("top1", "loss", "train_accuracy")


def run_from_json(record):
    """A run record (runs cache, table) as it was before writing: a figure written as null
    (NaN in memory: not measured, e.g. no validation loss, or a diverged one) is NaN again."""
    def numbers(entry):
        return {k: nan_for_null(v) if k in _FIGURES else v for k, v in entry.items()}
    out = numbers(record)
    if isinstance(out.get("curve"), list):
        out["curve"] = [numbers(point) for point in out["curve"]]
    return out


def run_record(summary, seconds):
    """The cached record of one finished run, from the trainer's summary."""
    last = summary["epochs"][-1]
    curve = [{"epoch": int(e.get("epoch", i)) + 1, "top1": float(e["val_top1"]),
              "loss": float(e.get("val_loss", float("nan")))}
             for i, e in enumerate(summary["epochs"]) if "val_top1" in e]
    return {"top1": float(last["val_top1"]), "loss": float(last.get("val_loss", float("nan"))),
            "train_accuracy": float(last.get("train_accuracy", float("nan"))),
            "curve": curve, "seconds": float(seconds)}


def train_standalone(arch, protocol, cache=None, trainer=None, seeds=None):
    """Stand-alone test top-1 of ``arch`` (mean over the protocol's seeds).

    Parameters
    ----------
    arch : Architecture
    protocol : StandaloneProtocol
    cache : StandaloneCache, optional
        Finished runs are taken from it and new ones added to it.
    trainer : callable, optional
        ``TrainConfig -> summary`` (default :func:`oneshot_nas.training.train`).
    seeds : sequence of int, optional
        Default: ``protocol.seeds``.

    Returns
    -------
    dict
        ``top1`` and ``loss`` (means), ``per_seed`` (top-1 list), ``per_seed_loss``, ``runs``
        (the records), ``seconds`` (training time of new runs).
    """
    if trainer is None:
        trainer = train
    records, seconds = [], 0.0
    for seed in (protocol.seeds if seeds is None else seeds):
        key = protocol.key(arch, seed)
        record = cache.get(key) if cache is not None else None
        if record is None:
            tic = time.perf_counter()
            summary = trainer(protocol.train_config(arch, seed))
            record = run_record(summary, time.perf_counter() - tic)
            seconds += record["seconds"]
            logger.info("stand-alone %s seed %d: top-1 %.4f loss %.4f (%.0f s)", arch, seed,
                        record["top1"], record["loss"], record["seconds"])
            if cache is not None:
                cache.put(key, record)
        records.append(dict(record, seed=int(seed)))
    per_seed = [r["top1"] for r in records]
    losses = [r.get("loss", float("nan")) for r in records]
    return {"top1": float(np.mean(per_seed)), "per_seed": per_seed,
            "loss": float(np.mean(losses)), "per_seed_loss": losses, "runs": records,
            "seconds": seconds}
