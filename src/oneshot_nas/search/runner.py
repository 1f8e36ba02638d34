"""Runs a whole search: load supernet and data, screen, evaluate, checkpoint, report, export."""
import json
import logging
import math
import os
import shlex
from dataclasses import asdict, dataclass

import numpy as np
from mxnet import nd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..config import ConstraintConfig, DataConfig, DeviceConfig, ModelConfig
from .. import interrupts
from ..data.factory import SMALL_DATASETS
from ..deploy.predict import meta_for_data, write_meta
from ..files import atomic_write_json, atomic_write_text, file_digest
from ..models import get_model
from ..models.params import load_params_checked
from ..profiling import FlopsCounter, count_flops_params
from ..records import read_record, read_training_json, record_path
from ..search_space import Architecture
from .algorithms import (Constraints, Objective, SearchState, genetic_search, random_search,
                         top_k)
from .evaluator import CandidateEvaluator, collect_batches, collect_images
from .latency import LatencyTable
from .plots import plot_candidates, plot_history

__all__ = ["SearchConfig", "run_search", "open_supernet", "OpenedSupernet", "load_supernet",
           "resume_settings", "start_or_resume", "fixed_genes",
           "supernet_split", "resolve_holdout", "SearchData", "load_search_data",
           "DATASET_SEARCH_DEFAULTS", "search_defaults"]

logger = logging.getLogger(__name__)


@dataclass
class SearchConfig(DataConfig, DeviceConfig, ModelConfig, ConstraintConfig):
    """Settings of :func:`run_search` (names follow the flags of ``search_supernet.py``).

    The data, device, model and constraint fields come from the shared pieces of
    :mod:`oneshot_nas.config`; ``train_subset`` (fashion-mnist) picks the calibration images.
    """

    batch_size: int = 128
    supernet_params: str = None
    # search
    search_mode: str = "genetic"
    search_iters: int = 20              # generations (genetic) / candidates (random)
    population_size: int = 50
    retain_length: int = 10
    random_select: float = 0.1
    mutate_chance: float = 0.1
    fixed_block_choices: str = None
    fixed_channel_choices: str = None
    topk: int = 3
    update_bn_images: int = 20000
    bn_group_size: int = 32
    val_images: int = None
    cache_mb: int = 2048
    holdout_search: int = None          # None: the supernet's held-out split (its JSON), else 0
    search_target: str = "acc"
    search_score: str = "acc"           # "loss": maximise exp(-held-out cross-entropy)
    score_acc_ratio: float = None       # DEFAULT_SCORE_ACC_RATIO with balanced_flop_acc
    latency_table: str = None
    target_latency: float = None
    hard_latency: bool = False
    seed: int = 0
    # outputs
    output_dir: str = "search_results"
    resume: bool = False
    export_best: str = None
    progress: bool = True


DEFAULT_SCORE_ACC_RATIO = 1.0


def score_acc_ratio(cfg):
    """``--score-acc-ratio``, its default with ``--search-target balanced_flop_acc``; a ratio
    given with another target is refused (it would be ignored)."""
    if cfg.score_acc_ratio is None:
        return DEFAULT_SCORE_ACC_RATIO
    if cfg.search_target != "balanced_flop_acc":
        raise ValueError("--score-acc-ratio %g weighs the normalised score of --search-target "
                         "balanced_flop_acc; with --search-target %s it would be ignored"
                         % (cfg.score_acc_ratio, cfg.search_target))
    return cfg.score_acc_ratio


def load_supernet(path, classes, ctx, **model_config):
    """Supernet with ``path``'s weights; ValueError naming the first mismatched parameter."""
    net = get_model("ShuffleNas", classes=classes, **model_config)
    if not path:
        raise ValueError("--supernet-params is required")
    return load_params_checked(net, path, "--supernet-params", ctx=ctx, cast_dtype=False,
                               what="this supernet configuration",
                               hint="check --use-se / --last-conv-after-pooling / "
                                    "--channels-layout")


# search settings that depend on the data set (flags left out take these): the published
# ImageNet settings, and the small data sets' (scripts/search_supernet.sh, docs/ranking.md)
DATASET_SEARCH_DEFAULTS = {
    "imagenet": dict(population_size=50, retain_length=10, search_iters=20,
                     update_bn_images=20000, search_score="acc"),
    "small": dict(population_size=16, retain_length=4, search_iters=10, update_bn_images=1024,
                  search_score="loss"),
}


def search_defaults(dataset):
    """The data-set dependent search settings (:data:`DATASET_SEARCH_DEFAULTS`) of ``dataset``."""
    return dict(DATASET_SEARCH_DEFAULTS["small" if dataset in SMALL_DATASETS else "imagenet"])


# flags whose values decide which candidates a search draws and how it scores them: a resumed
# search must share them (--search-iters may grow; batch sizes, workers and outputs may change)
RESUME_FLAGS = ("search_mode", "seed", "population_size", "retain_length", "random_select",
                "mutate_chance", "fixed_block_choices", "fixed_channel_choices", "search_target",
                "search_score", "score_acc_ratio", "comparison_model", "flop_max", "param_max",
                "normalised_score_max", "max_flops", "max_params", "target_latency",
                "hard_latency", "channels_layout", "use_se", "last_conv_after_pooling",
                "dataset", "input_size", "crop_ratio", "update_bn_images", "bn_group_size",
                "val_images")


# flags added after checkpoints were first written: a checkpoint without one used this value
LATER_FLAG_DEFAULTS = {"--search-score": "acc"}


def resume_settings(cfg):
    """``{'--flag': value}`` a checkpoint records and a resumed search must match, including
    the content digests of the supernet (and latency table)."""
    settings = {"--" + name.replace("_", "-"): getattr(cfg, name) for name in RESUME_FLAGS}
    settings["--score-acc-ratio"] = score_acc_ratio(cfg)     # None and the default agree
    settings["--supernet-params (content)"] = file_digest(cfg.supernet_params)
    if cfg.latency_table:
        settings["--latency-table (content)"] = file_digest(cfg.latency_table)
    return settings


def start_or_resume(cfg, ckpt_path):
    """A fresh :class:`SearchState`, or with ``cfg.resume`` the one in ``ckpt_path``.

    Raises
    ------
    ValueError
        The checkpoint is unreadable, or was made with other settings (the first differing
        flag is named); without ``cfg.resume``, the folder already holds a search.
    """
    settings = resume_settings(cfg)
    if not cfg.resume:
        done = [p for p in (ckpt_path, os.path.join(os.path.dirname(ckpt_path),
                                                    "search_results.json")) if os.path.isfile(p)]
        if done:
            raise ValueError("--output-dir %s already holds a search (%s): --resume goes on "
                             "with it; another --output-dir starts a new one"
                             % (os.path.dirname(ckpt_path) or ".", ", ".join(done)))
        return SearchState(cfg.search_mode, cfg.seed, settings)
    if not os.path.isfile(ckpt_path):
        logger.warning("--resume: no search checkpoint %s yet; starting a new search",
                       ckpt_path)
        return SearchState(cfg.search_mode, cfg.seed, settings)
    state = SearchState.load(ckpt_path)
    if not state.settings:
        raise ValueError("%s does not record the settings it was made with (an older "
                         "version); its search cannot be checked and continued: start one in "
                         "another --output-dir" % ckpt_path)
    for flag, value in settings.items():
        saved = state.settings.get(flag, LATER_FLAG_DEFAULTS.get(flag))
        if saved != value:
            what = "another file" if flag.endswith("(content)") else repr(saved)
            now = "" if flag.endswith("(content)") else ", not %r" % (value,)
            raise ValueError("%s was made with %s %s%s: resume with the same settings or use "
                             "another --output-dir" % (ckpt_path, flag.replace(" (content)", ""),
                                                       what, now))
    logger.info("resuming %s search at step %d with %d evaluated candidates", state.mode,
                state.step, len(state.results))
    return state


def supernet_split(params_path):
    """The held-out split a supernet was trained with, from the JSON beside its ``.params``
    (written by the trainer); None when there is no such JSON (older or foreign weights)."""
    meta = read_training_json(params_path)
    if meta is None:
        return None
    path = record_path(params_path)
    split = meta.get("split")
    if split is None and isinstance(meta.get("config"), dict):
        split = {"holdout": meta["config"].get("holdout_search") or 0, "digest": None}
        field = "config.holdout_search"
    else:
        field = "split.holdout"
    if split is None:
        return None
    if not isinstance(split, dict):
        raise ValueError("%s: field 'split' is %r, not a split record" % (path, split))
    holdout = split.get("holdout") or 0
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise ValueError("%s: field %r is %r, not a count of held-out images"
                         % (path, field, holdout))
    return dict(split, holdout=holdout, path=path)


def resolve_holdout(requested, params_path):
    """Number of held-out images the search scores on: ``requested``, or the supernet's.

    ``requested`` None takes the count from the supernet's JSON (0 without one). A positive
    request that differs from the supernet's count is refused: part of those images would have
    been trained on.
    """
    known = supernet_split(params_path)
    known_count = None if known is None else int(known.get("holdout") or 0)
    if requested is None:
        return known_count or 0, known
    requested = int(requested)
    if requested > 0 and known_count is not None and requested != known_count:
        raise ValueError("--holdout-search %d does not match the supernet, which held out %d "
                         "training images (%s); pass --holdout-search %d"
                         % (requested, known_count, known["path"], known_count))
    return requested, known


@dataclass
class SearchData:
    """Images a search needs: calibration images, the scoring batches and what they are."""

    calib: object            # NDArray of training images the supernet trained on
    scoring: object          # cached list of (data, label) batches, or a callable
    info: object             # DataInfo
    split: dict              # {'name': 'holdout'|'val', 'images': n, ...}


def load_search_data(cfg, ctx, holdout, known_split=None):
    """Decode calibration images (training images outside the held-out split) and the scoring
    images (the held-out split, or the validation split without one) once.

    Parameters
    ----------
    cfg : SearchConfig
    ctx : Context
    holdout : int
        Held-out images (0: score on the validation split).
    known_split : dict, optional
        The supernet's split record; its digest must match the images held out here.
    """
    splits = cfg.split_loaders(batch_size=cfg.batch_size, augment=False, seed=cfg.seed,
                               holdout=holdout)
    info = splits.info
    if holdout and known_split and known_split.get("digest") and \
            known_split["digest"] != info.holdout_digest:
        raise ValueError("the held-out images differ from those the supernet held out (digest "
                         "%s, %s source, in %s; here %s, %s source): use the same data files"
                         % (known_split["digest"], known_split.get("source"),
                            known_split["path"], info.holdout_digest, info.source))
    scoring_loader = splits.holdout if holdout else splits.val
    if holdout:
        logger.info("scoring candidates on %d held-out training images (digest %s); the "
                    "validation split is not used by the search", info.num_holdout,
                    info.holdout_digest)
    else:
        logger.warning("scoring candidates on the validation split (no held-out split): "
                       "report the final subnet on other images")
    logger.info("decoding %d calibration images and the scoring images once",
                cfg.update_bn_images)
    show = cfg.progress
    needed = math.ceil(cfg.update_bn_images / cfg.batch_size)
    total = min(len(splits.train), needed) if hasattr(splits.train, "__len__") else needed
    reading = tqdm(splits.train, desc="calibration images", unit="batch", leave=False,
                   total=total, disable=not show)
    calib = collect_images(reading, cfg.update_bn_images, ctx)
    reading.close()
    reading = tqdm(scoring_loader, desc="scoring images", unit="batch", leave=False,
                   disable=not show)
    cached = collect_batches(reading, cfg.val_images, cfg.cache_mb, ctx)
    reading.close()
    scoring = cached if cached is not None else (lambda: scoring_loader)
    images = (sum(b[0].shape[0] for b in cached) if cached is not None
              else scoring_loader.num_images)
    split = {"name": "holdout" if holdout else "val", "images": int(images),
             "holdout": int(holdout),
             "digest": info.holdout_digest or None, "calibration_images": int(calib.shape[0])}
    return SearchData(calib, scoring, info, split)


@dataclass
class OpenedSupernet:
    """A trained supernet ready to score subnets: its weights, training record, the held-out
    split it is scored on, the decoded images and the evaluator (recalibration + scoring)."""

    params: str
    record: dict             # the trainer's record beside the weights (None without one)
    holdout: int             # held-out images scored on (0: the validation split)
    data: SearchData
    supernet: object
    evaluator: CandidateEvaluator

    @property
    def split(self):
        return self.data.split


def open_supernet(cfg, contexts=None):
    """Open the supernet of ``cfg.supernet_params`` for scoring, the one way the search, the
    ranking check and the winner check do it.

    Parameters
    ----------
    cfg : SearchConfig
        Its data, model, held-out split and scoring settings (``dataset``, ``input_size``,
        the model flags, ``holdout_search``, ``update_bn_images``, ``bn_group_size``,
        ``batch_size``, ``val_images``, ...).
    contexts : list of Context, optional
        Devices that evaluate candidates (default ``cfg.contexts()``); images are cached on
        the first.

    Returns
    -------
    OpenedSupernet
    """
    contexts = contexts or cfg.contexts()
    holdout, known_split = resolve_holdout(cfg.holdout_search, cfg.supernet_params)
    data = load_search_data(cfg, contexts[0], holdout, known_split)
    supernet = load_supernet(cfg.supernet_params, data.info.num_classes, contexts,
                             **cfg.model_settings())
    evaluator = CandidateEvaluator(supernet, data.calib, data.scoring, contexts,
                                   cfg.bn_group_size, cfg.batch_size)
    return OpenedSupernet(cfg.supernet_params, read_record(cfg.supernet_params), holdout, data,
                          supernet, evaluator)


def fixed_genes(settings):
    """``(blocks, channels)`` a search keeps fixed (arrays, or None) from its settings: a
    :class:`SearchConfig` or the ``config`` dict of a saved ``search_results.json``."""
    get = settings.get if isinstance(settings, dict) else \
        (lambda name: getattr(settings, name, None))
    blocks = channels = None
    if get("fixed_block_choices"):
        blocks = np.array(Architecture.parse(get("fixed_block_choices")).blocks)
    if get("fixed_channel_choices"):
        channels = np.array(Architecture.parse_channels(get("fixed_channel_choices")))
    return blocks, channels


def _commands(arch, cfg):
    """The commands that train ``arch`` from scratch with the supernet's shape and data: the
    trainer's flags, and the training script with its environment variables."""
    flags = ["--use-se"] if cfg.use_se else []
    flags += ["--last-conv-after-pooling"] if cfg.last_conv_after_pooling else []
    data, env = [], []
    if cfg.dataset != "imagenet":
        data = ["--dataset", cfg.dataset, "--input-size", str(cfg.input_size)]
        env = ["DATASET=%s" % cfg.dataset, "INPUT_SIZE=%d" % cfg.input_size]
    elif cfg.input_size != 224:
        data = ["--input-size", str(cfg.input_size)]
        env = ["INPUT_SIZE=%d" % cfg.input_size]
    train = " ".join(["python train_imagenet.py"] + data + [
        "--model ShuffleNas_fixArch --block-choices", shlex.quote(arch.block_string()),
        "--channel-choices", shlex.quote(arch.channel_string()),
        "--channels-layout", cfg.channels_layout] + flags)
    env += ["BLOCK_CHOICES=%s" % arch.block_string(),
            "CHANNEL_CHOICES=%s" % arch.channel_string()]
    if cfg.channels_layout != "OneShot":
        env.append("CHANNELS_LAYOUT=%s" % cfg.channels_layout)
    if cfg.use_se and cfg.last_conv_after_pooling:
        script = "scripts/train_fixArch+.sh"          # sets both flags itself
    else:
        script = "scripts/train_fixArch.sh"
        if flags:
            env.append("FIXARCH_FLAGS=%s" % shlex.quote(" ".join(flags)))
    return train, " ".join(env + ["sh", script])


def _search(cfg, state, evaluator, counter, constraints, objective, common):
    if cfg.search_mode == "genetic":
        genetic_search(state, evaluator.evaluate, counter, constraints, objective,
                       cfg.population_size, cfg.retain_length, cfg.random_select,
                       cfg.mutate_chance, cfg.search_iters, **common)
    elif cfg.search_mode == "random":
        random_search(state, evaluator.evaluate, counter, constraints, objective,
                      cfg.search_iters, **common)
    else:
        raise ValueError("unknown --search-mode %r; choose random or genetic" % cfg.search_mode)


def _check_settings(cfg):
    """Refuse settings a search cannot run with, in one line each."""
    for flag, value, low in (("--batch-size", cfg.batch_size, 1),
                             ("--population-size", cfg.population_size, 1),
                             ("--retain-length", cfg.retain_length, 1),
                             ("--topk", cfg.topk, 1), ("--search-iters", cfg.search_iters, 1),
                             ("--update-bn-images", cfg.update_bn_images, 1),
                             ("--bn-group-size", cfg.bn_group_size, 1)):
        if value < low:
            raise ValueError("%s must be >= %d, got %d" % (flag, low, value))
    if cfg.val_images is not None and cfg.val_images < 1:
        raise ValueError("--val-images must be >= 1, got %d" % cfg.val_images)
    if cfg.search_mode == "genetic" and cfg.retain_length > cfg.population_size:
        raise ValueError("--retain-length %d keeps more parents than --population-size %d has "
                         "candidates" % (cfg.retain_length, cfg.population_size))
    if not cfg.supernet_params:
        raise ValueError("--supernet-params is required")
    if not os.path.isfile(cfg.supernet_params):
        raise ValueError("--supernet-params file %s does not exist" % cfg.supernet_params)


def _search_contexts(cfg):
    contexts = cfg.contexts()
    if cfg.num_gpus > 1:
        logger.warning("the search evaluates on one GPU; --num-gpus %d uses gpu(0) only "
                       "(--devices gpu:0,gpu:1,... evaluates on several)", cfg.num_gpus)
        contexts = contexts[:1]
    return contexts


def _objective(cfg, constraints):
    """The fitness of a candidate, and the latency predictor it uses (or None)."""
    latency_fn = None
    if cfg.latency_table:
        table = LatencyTable.load(cfg.latency_table, expected_config=cfg.model_settings())
        latency_fn = table.predict
    elif cfg.target_latency:
        raise ValueError("--target-latency needs --latency-table (build one with "
                         "python -m oneshot_nas.cli.latency_table)")
    objective = Objective(cfg.search_target, score_acc_ratio(cfg), constraints, latency_fn,
                          cfg.target_latency, hard_latency=cfg.hard_latency,
                          score=cfg.search_score)
    return objective, latency_fn


class _Progress:
    """The search's bar (counting candidates: a generation's repeats, scored before, count as
    done, so that the rate and ETA hold within a generation) or, without a bar, a log line per
    candidate."""

    def __init__(self, cfg, state):
        self.show = cfg.progress
        self.per_step = cfg.population_size if cfg.search_mode == "genetic" else 1
        self.bar = tqdm(total=cfg.search_iters * self.per_step,
                        initial=state.step * self.per_step, desc="%s search" % cfg.search_mode,
                        unit="cand", disable=not self.show)

    def _advance(self, st, n, redraw=True):
        """Postfix first, then one redraw (a captured log gets one frame per candidate)."""
        best = max(r["fitness"] for r in st.results.values())
        self.bar.set_postfix(best="%.4f" % best, evaluated=len(st.results), refresh=False)
        if n > 0:
            self.bar.update(n)
        elif redraw:
            self.bar.refresh()
        return best

    def step_done(self, st, _):
        # the step's last candidate was drawn already unless repeats still count as done
        self._advance(st, st.step * self.per_step - self.bar.n, redraw=False)

    def evaluated(self, st, arch, rec):
        interrupts.check()
        if self.show:
            if self.per_step > 1:       # one step is one candidate otherwise: step_done draws
                self._advance(st, 1 if self.bar.n < (st.step + 1) * self.per_step else 0)
        else:
            best = max(r["fitness"] for r in st.results.values())
            logger.info("candidate %d (step %d): top-1 %.4f, loss %s, %.1f MFLOPs, %.3f M "
                        "params, fitness %.4f (best %.4f)", len(st.results), st.step + 1,
                        rec["top1"], "-" if rec.get("loss") is None else "%.4f" % rec["loss"],
                        rec["flops"], rec["params"], rec["fitness"], best)


def _top_records(cfg, state):
    """The best ``topk`` candidates with their symbolic FLOPs / params (confirming the lookup
    table's) and the commands that train them from scratch."""
    best = []
    for arch, rec in top_k(state, cfg.topk):
        sym_flops, sym_params = count_flops_params(arch, method="symbol", input_size=224,
                                                   classes=1000, **cfg.model_settings())
        train_cmd, script_cmd = _commands(arch, cfg)
        best.append(dict(rec, blocks=list(arch.blocks), channels=list(arch.channels),
                         block_choices=arch.block_string(), channel_choices=arch.channel_string(),
                         symbol_flops=sym_flops, symbol_params=sym_params,
                         train_command=train_cmd, script_command=script_cmd))
        logger.info("top: %s top-1 %.4f FLOPs %.2f M params %.3f M fitness %.4f", arch,
                    rec["top1"], sym_flops, sym_params, rec["fitness"])
    return best


def _plots(cfg, state, constraints):
    plots = [plot_candidates([r for r in state.results.values()],
                             os.path.join(cfg.output_dir, "candidates_pareto.png"),
                             constraints.max_flops, "%s search" % cfg.search_mode)]
    if state.history:
        plots.append(plot_history(state.history, os.path.join(cfg.output_dir,
                                                              "fitness_history.png")))
    return plots


def _save_then_check(state, path):
    """Checkpoint the search, then stop there if Ctrl-C was pressed meanwhile."""
    state.save(path)
    interrupts.check()


def run_search(cfg, counter=None):
    """Run the configured search; returns the results dict (also written as JSON).

    Parameters
    ----------
    cfg : SearchConfig
    counter : callable, optional
        Vectorised FLOPs / params counter; default the lookup table in ImageNet units.
    """
    contexts = _search_contexts(cfg)
    _check_settings(cfg)
    os.makedirs(cfg.output_dir, exist_ok=True)
    logger.info("evaluating candidates on %s", ",".join(str(c) for c in contexts))
    constraints = Constraints.from_config(cfg)
    fixed_blocks, fixed_channels = fixed_genes(cfg)
    counter = FlopsCounter.for_model(cfg) if counter is None else counter
    objective, latency_fn = _objective(cfg, constraints)
    ckpt_path = os.path.join(cfg.output_dir, "search_state.json")
    state = start_or_resume(cfg, ckpt_path)      # before any data is decoded

    opened = open_supernet(cfg, contexts)
    evaluator = opened.evaluator
    for arch, rec in state.results.items():      # results of a resumed run are reused
        evaluator.cache[arch] = {"top1": rec["top1"], "top5": rec["top5"],
                                 "loss": rec.get("loss")}
    shown = _Progress(cfg, state)
    common = dict(fixed_blocks=fixed_blocks, fixed_channels=fixed_channels,
                  checkpoint=lambda st: _save_then_check(st, ckpt_path), latency_fn=latency_fn,
                  progress=shown.step_done, on_evaluated=shown.evaluated)
    with logging_redirect_tqdm(), interrupts.deferred():   # log lines above the bar
        _search(cfg, state, evaluator, counter, constraints, objective, common)
    shown.bar.close()

    best = _top_records(cfg, state)
    results = {"config": asdict(cfg), "constraints": str(constraints), "split": opened.split,
               "evaluated": len(state.results), "history": state.history, "topk": best,
               "eval_seconds": evaluator.seconds,
               "candidates": [dict(r, arch=json.loads(a.to_json()))
                              for a, r in state.results.items()],
               "plots": _plots(cfg, state, constraints)}
    if cfg.export_best and best:
        arch = Architecture(best[0]["blocks"], best[0]["channels"])
        results["exported"] = export_subnet(evaluator, arch, cfg.export_best, cfg.input_size,
                                            meta=_export_meta(cfg, opened, arch))
    path = os.path.join(cfg.output_dir, "search_results.json")
    # a run killed while writing keeps the previous results file whole
    atomic_write_json(path, results, indent=1)
    logger.info("wrote %s", path)
    results["results_path"] = path
    return results


def _export_meta(cfg, opened, arch):
    """The exported subnet's record: the supernet's data and preprocessing, the subnet's
    shape and architecture, the supernet it inherits from and this command."""
    config = dict(cfg.model_settings(), classes=opened.data.info.num_classes)
    return meta_for_data(cfg.dataset, opened.data.info, cfg.input_size, cfg.crop_ratio,
                         model="ShuffleNas_fixArch", config=config,
                         architecture=arch.to_json(), supernet=cfg.supernet_params)


def export_subnet(evaluator, arch, directory, input_size, meta=None):
    """Export ``arch`` with inherited weights and recalibrated BN as symbol + params (and
    ``meta``, a :class:`~oneshot_nas.deploy.DeployMeta`, as ``best-subnet-deploy.json``)."""
    os.makedirs(directory, exist_ok=True)
    subnet = evaluator.prepare_subnet(arch)
    subnet(nd.zeros((1, 3, input_size, input_size), ctx=evaluator.ctx))
    prefix = os.path.join(directory, "best-subnet")
    subnet.export(prefix)
    atomic_write_text(prefix + "-architecture.json", arch.to_json())
    out = {"symbol": prefix + "-symbol.json", "params": prefix + "-0000.params",
           "architecture": prefix + "-architecture.json"}
    if meta is not None:
        out["deploy"] = write_meta(prefix, meta)
    logger.info("exported %s", ", ".join(sorted(out.values())))
    return out
