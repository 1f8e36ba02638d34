"""The ranking check: does the supernet order architectures as stand-alone training does?

Two modes share the scoring and the statistics:

* **against a stored table** (:func:`run_benchmark_check`, ``rank_check --benchmark``): the
  table's architectures are scored inside the supernet (recalibrated, held-out split) and
  compared with the table's stand-alone test accuracies (mean over seeds). Minutes: nothing is
  trained. The table's own seed-to-seed tau is reported beside the supernet's as the ceiling,
  and tau is also given within the search's FLOPs band.
* **training new architectures** (:func:`run_rank_check`): K architectures spread over the FLOPs
  the constraints admit are trained stand-alone with a protocol (the digits one, or the table's
  with ``--protocol-from``), cached per run.

Both score each architecture twice (held-out top-1 and held-out cross-entropy) and take as the
primary score the one whose spread over architectures is least explained by the sampling noise
of the scoring images (``reliability``); both print Kendall's tau and Spearman's rho with
percentile-bootstrap intervals over architectures and the count K.
"""
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from tqdm import tqdm

from ..config import ConstraintConfig, ModelConfig
from ..data import default_input_size
from ..files import atomic_write, atomic_write_json, file_digest, nan_for_null, read_json
from ..plotting import pyplot, save_figure
from ..profiling import FlopsCounter
from ..records import read_record
from ..search.algorithms import Constraints
from ..search.runner import SearchConfig, open_supernet
from ..search_space import Architecture
from .equivalence import same_function_twin
from .protocol import StandaloneCache, StandaloneProtocol, train_standalone
from .beyond_flops import beyond_flops
from .image_counts import image_count_curve, spearman_brown
from .sampling import sample_spread
from .stats import rank_correlations, score_reliability, tau_null_sd
from .table import load_table, seed_tau

__all__ = ["SupernetScoring", "RankCheckConfig", "run_rank_check", "BenchmarkCheckConfig",
           "run_benchmark_check", "plot_ranking", "supernet_evaluator", "supernet_files",
           "jsonable"]

logger = logging.getLogger(__name__)

_SCORE_NAMES = {"acc": "held-out top-1", "loss": "held-out cross-entropy (lower is better)"}


@dataclass
class SupernetScoring:
    """How both checks score architectures inside the supernet, and where they write."""

    supernet_params: str = None         # benchmark check: also a list of checkpoints
    holdout_search: int = None          # None: the supernet's held-out split (its JSON)
    update_bn_images: int = 1024
    bn_group_size: int = 32
    batch_size: int = 128
    score: str = "auto"                 # auto | acc | loss
    bootstrap: int = 2000
    seed: int = 0
    output_dir: str = "rank_check"


@dataclass
class RankCheckConfig(SupernetScoring, ModelConfig, ConstraintConfig):
    """Settings of :func:`run_rank_check` (names follow the flags of ``rank_check``).

    The model flags and the constraints (MFLOPs / M params at 224 px, 1000 classes, as in the
    search) are the shared pieces of :mod:`oneshot_nas.config`.
    """

    num_archs: int = 12
    # stand-alone protocol
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol)
    min_spread: float = 5.0             # points
    cache_file: str = None              # default output_dir/standalone_cache.json


@dataclass
class BenchmarkCheckConfig(SupernetScoring):
    """Settings of :func:`run_benchmark_check` (flags of ``rank_check --benchmark``)."""

    benchmark: str = None               # the table JSON
    progress: bool = True
    score_all: bool = False             # also score rows without finished runs (for later)
    twins: int = 8                      # rows scored against a same-function twin (0: none)
    from_scores: str = None             # a scores.json to recompute the figures from
    image_counts: tuple = ()            # also recompute tau on subsets of this many images
    image_draws: int = 20               # random image subsets per count


def jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: list(o) if isinstance(o, tuple)
                                 else str(o)))


def supernet_evaluator(cfg, dataset, model, train_subset=0, progress=False, input_size=None):
    """Supernet + scoring data + evaluator; returns ``(evaluator, split, holdout)``.

    Parameters
    ----------
    cfg : SupernetScoring
        The supernet's file, its held-out split, the recalibration and the batch size.
    dataset : str
        The data set the supernet was trained on (the protocol's, the table's).
    model : ModelConfig
        The supernet's shape.
    input_size : int, optional
        Scoring images' size in px (default: the data set's).
    """
    if not (cfg.supernet_params and os.path.isfile(cfg.supernet_params)):
        raise ValueError("--supernet-params file %s does not exist" % cfg.supernet_params)
    scoring = SearchConfig(
        supernet_params=cfg.supernet_params, dataset=dataset,
        input_size=input_size or default_input_size(dataset), holdout_search=cfg.holdout_search,
        batch_size=cfg.batch_size, num_workers=0, update_bn_images=cfg.update_bn_images,
        bn_group_size=cfg.bn_group_size, seed=cfg.seed, train_subset=train_subset,
        progress=progress, **model.model_settings())
    opened = open_supernet(scoring)
    return opened.evaluator, opened.split, opened.holdout


def _score(evaluator, arch):
    tic = time.perf_counter()
    subnet = evaluator.prepare_subnet(arch)
    hit1, _, loss = evaluator.per_image(subnet)
    return hit1.astype(float), loss, time.perf_counter() - tic


def _primary(choice, reliability):
    if choice != "auto":
        return choice
    finite = {k: v for k, v in reliability.items() if not math.isnan(v)}
    return max(finite, key=finite.get) if finite else "loss"


def _reliability(hits, losses):
    """Share of each score's variance over architectures that is not image sampling noise."""
    return {"acc": score_reliability(hits), "loss": score_reliability(losses)}


def _correlations(rows, truth_key, bootstrap, seed):
    """Rank correlations of both scores (higher = better) with the truth over ``rows``."""
    truth = np.array([r[truth_key] for r in rows])
    scores = {"acc": np.array([r["supernet_top1"] for r in rows]),
              "loss": -np.array([r["supernet_loss"] for r in rows])}   # higher = better
    return {name: rank_correlations(values, truth, bootstrap, seed=seed)
            for name, values in scores.items()}


def _correlate(rows, truth_key, hits, losses, choice, bootstrap, seed):
    """Scores, reliabilities, primary score and correlations over ``rows``."""
    reliability = _reliability(hits, losses)
    return (reliability, _primary(choice, reliability),
            _correlations(rows, truth_key, bootstrap, seed))


def _size_baselines(rows, bootstrap, seed):
    """Rank correlations of FLOPs and of params with the stand-alone accuracy: what ranking
    by size alone achieves, the bar a supernet has to clear to add information."""
    truth = np.array([r["standalone_top1"] for r in rows])
    return {name: rank_correlations(np.array([r[name] for r in rows]), truth, bootstrap,
                                    seed=seed)["kendall_tau"] for name in ("flops", "params")}


def _check_score(score):
    if score not in ("auto", "acc", "loss"):
        raise ValueError("unknown --score %r; choose auto, acc or loss" % score)


def run_benchmark_check(cfg, evaluator=None):
    """Score the supernet on every architecture of a stored table; returns the results dict
    (also written as ``rank_check.json`` with the scatter ``ranking.png``, and the per-row
    scores as ``scores.json``).

    With ``cfg.from_scores`` nothing is scored: the per-row scores (and the twins' scores)
    come from a ``scores.json`` written earlier, and every figure is recomputed from it and
    the table as it stands now, without the supernet's weights.

    Parameters
    ----------
    cfg : BenchmarkCheckConfig
    evaluator : (CandidateEvaluator, split dict, holdout), optional
        Default: built from ``cfg.supernet_params`` and the table's data set, input size and
        model flags; a list of them, one per file, when ``cfg.supernet_params`` lists several
        checkpoints (their scores are averaged).
    """
    _check_score(cfg.score)
    if cfg.image_counts and cfg.from_scores:
        raise ValueError("--image-counts recomputes the figures on fewer scoring images: it "
                         "needs the per-image scores (--supernet-params, cached in the output "
                         "folder), which a scores.json does not keep")
    table = load_table(cfg.benchmark)
    protocol = StandaloneProtocol.from_dict(dict(table["protocol"], seeds=[0]))
    if cfg.from_scores:
        scored = _stored_scores(cfg.from_scores, cfg.benchmark, table)
    else:
        scored = _score_table(cfg, table, protocol, evaluator)
    rows = [dict(r) for r in scored["rows"] if "standalone_top1" in r]
    if len(rows) < 3:
        raise ValueError("%s has %d architectures with finished runs; at least 3 are needed"
                         % (cfg.benchmark, len(rows)))
    logger.info("ranking check against %s: %d architectures, stand-alone %s test top-1 (%s, "
                "%d px); supernet scores on the %s split (%d images)%s", cfg.benchmark,
                len(rows), table["dataset"], "complete table" if table["complete"] else
                "incomplete table", protocol.image_size, scored["split"]["name"],
                scored["split"]["images"], ", read from %s" % cfg.from_scores
                if cfg.from_scores else "")
    reliability = scored["reliability"]
    primary = _primary(cfg.score, reliability)
    correlations = _correlations(rows, "standalone_top1", cfg.bootstrap, cfg.seed)
    for r in rows:
        r["score"] = _oriented(r, primary)
    os.makedirs(cfg.output_dir, exist_ok=True)
    results = {
        "mode": "benchmark", "benchmark": cfg.benchmark, "config": jsonable(asdict(cfg)),
        "dataset": table["dataset"], "input_size": protocol.image_size,
        "table_complete": table["complete"], "split": scored["split"],
        "supernet": scored["supernet"],
        "k": len(rows), "null_sd": tau_null_sd(len(rows)), "architectures": rows,
        "reliability": reliability, "primary_score": primary,
        "primary_score_name": _SCORE_NAMES[primary], "correlations": correlations,
        "kendall_tau": correlations[primary]["kendall_tau"],
        "spearman_rho": correlations[primary]["spearman_rho"],
        "ceiling": seed_tau(table),
        "band": _band_figures(table, rows, primary, cfg),
        "baselines": _size_baselines(rows, cfg.bootstrap, cfg.seed),
        "beyond_flops": beyond_flops(rows, cfg.bootstrap, cfg.seed),
        "twins": _twin_summary(scored["twins"], rows, primary, protocol.image_size),
    }
    if cfg.image_counts:
        results["image_counts"] = _image_counts(cfg, rows, scored, primary)
    _log_result(results)
    results["scores_path"] = cfg.from_scores or _write_scores(cfg, table, scored, primary)
    return _write_results(results, cfg.output_dir)


def _image_counts(cfg, rows, scored, primary):
    """The figures on subsets of the scoring images (:mod:`.image_counts`), with the
    reliability of twice the images projected from that of all of them."""
    per_image = np.array(scored["per_image"][primary], dtype=float)
    if primary == "loss":
        per_image = -per_image                      # higher is better, as ``score``
    curve = image_count_curve(rows, per_image, cfg.image_counts, cfg.image_draws, cfg.seed)
    full = score_reliability(per_image)
    out = {"score": primary, "images": per_image.shape[1], "curve": curve,
           "reliability_twice_the_images": spearman_brown(full, 2.0)}
    for entry in curve:
        logger.info("%d images (%d draws): reliability %.3f, tau %.3f +- %.3f, partial tau "
                    "%.3f +- %.3f (whole table)", entry["images"], entry["draws"],
                    entry["reliability"]["mean"], entry["all"]["kendall_tau"]["mean"],
                    entry["all"]["kendall_tau"]["sd"], entry["all"]["partial_tau"]["mean"],
                    entry["all"]["partial_tau"]["sd"])
    return out


def supernet_files(value):
    """``--supernet-params`` as a list of files: one, or several checkpoints of one run."""
    if value is None:
        return [None]
    return [value] if isinstance(value, str) else list(value)


def _score_table(cfg, table, protocol, evaluator):
    """Score the table's rows (and the twins) inside the supernet: ``{"rows", "reliability",
    "split", "supernet", "twins"}``, rows without finished runs too with ``score_all``.

    With several ``cfg.supernet_params`` (checkpoints of one training run) every architecture
    is scored with each, one checkpoint at a time, and its score is the mean over them, image
    by image (so the reliability is that of the averaged score). ``evaluator`` is then one
    ``(evaluator, split, holdout)`` per file."""
    finished = sum(1 for r in table["architectures"] if r["runs"])
    if not cfg.score_all and finished < 3:
        raise ValueError("%s has %d architectures with finished runs; at least 3 are needed"
                         % (cfg.benchmark, finished))
    paths = supernet_files(cfg.supernet_params)
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise ValueError("--supernet-params lists %s more than once" % ", ".join(twice))
    if evaluator is not None and len(paths) == 1:
        evaluator = [evaluator]
    for path in paths:
        _check_supernet_matches(path, table, protocol)
    os.makedirs(cfg.output_dir, exist_ok=True)
    per_file, first_split = [], None
    for i, path in enumerate(paths):
        one = replace(cfg, supernet_params=path)
        if len(paths) > 1:
            logger.info("checkpoint %d of %d: %s", i + 1, len(paths), path)
        opened, split, _ = evaluator[i] if evaluator is not None else supernet_evaluator(
            one, table["dataset"], protocol, progress=cfg.progress,
            input_size=protocol.image_size)
        if first_split is None:
            first_split = split
        elif split != first_split:
            raise ValueError("%s scores on another held-out split than %s (%s against %s): "
                             "average checkpoints of one training run"
                             % (path, paths[0], split, first_split))
        scores = _ScoreCache(os.path.join(cfg.output_dir, "supernet_scores.npz"),
                             _scoring_key(one, split))
        rows, hits, losses = _score_rows(one, table, opened, scores)
        per_file.append((rows, hits, losses,
                         _score_twins(one, rows, opened, scores, protocol)))
        del opened, scores                  # one supernet in memory at a time
    rows, hits, losses, twins = _mean_over_checkpoints(per_file)
    supernet = [{"params": path, "digest": file_digest(path)
                 if path and os.path.isfile(path) else None} for path in paths]
    return {"rows": rows, "reliability": _reliability(hits, losses), "split": first_split,
            "per_image": {"acc": hits, "loss": losses},
            "supernet": supernet[0] if len(paths) == 1 else
            {"params": [s["params"] for s in supernet],
             "digest": [s["digest"] for s in supernet], "checkpoints": len(paths)},
            "twins": twins}


def _mean_over_checkpoints(per_file):
    """Rows, per-image hits and losses and twins of several checkpoints -> their means."""
    if len(per_file) == 1:
        return per_file[0]
    n = len(per_file)
    rows = [dict(r) for r in per_file[0][0]]
    for i, row in enumerate(rows):
        for key in ("supernet_top1", "supernet_loss"):
            row[key] = float(np.mean([f[0][i][key] for f in per_file]))
        if "supernet_seconds" in row:
            row["supernet_seconds"] = float(sum(f[0][i]["supernet_seconds"] for f in per_file))
    hits = [np.mean([f[1][i] for f in per_file], axis=0) for i in range(len(per_file[0][1]))]
    losses = [np.mean([f[2][i] for f in per_file], axis=0)
              for i in range(len(per_file[0][2]))]
    twins = per_file[0][3]
    if twins is not None:
        twins = [dict(p, twin_top1=float(np.mean([f[3][i]["twin_top1"] for f in per_file])),
                      twin_loss=float(np.mean([f[3][i]["twin_loss"] for f in per_file])))
                 for i, p in enumerate(twins)]
    logger.info("scores averaged over %d checkpoints", n)
    return rows, hits, losses, twins


def _stored_scores(path, table_path, table):
    """The scored rows of a ``scores.json`` joined with the table's rows as they stand now."""
    doc = read_json(path, "the scores file")
    name = os.path.basename(table_path)
    if doc.get("table") != name:
        raise ValueError("%s scores the rows of %s, not of %s" % (path, doc.get("table"), name))
    missing = [k for k in ("rows", "reliability", "split") if k not in doc]
    if missing or not all("top1" in r and "loss" in r for r in doc["rows"]):
        raise ValueError("%s has no per-row top-1 and loss or no %s (written by an older "
                         "rank_check): score the supernet again" % (path, ", ".join(missing)
                                                                   or "reliability"))
    by_row = {int(r["row"]): r for r in doc["rows"]}
    entries = {e["row"]: e for e in table["architectures"]}
    unknown = sorted(set(by_row) - set(entries))
    if unknown:
        raise ValueError("%s scores rows %s that the table does not have" % (path, unknown))
    unscored = [e["row"] for e in table["architectures"] if e["runs"] and e["row"] not in by_row]
    if unscored:
        raise ValueError("%s has no score for rows %s of the table (finished since): score the "
                         "supernet again with --score-all-rows" % (path, unscored))
    rows = [_row(entries[k], by_row[k]["top1"], by_row[k]["loss"], None) for k in sorted(by_row)]
    return {"rows": rows, "reliability": doc["reliability"], "split": doc["split"],
            "supernet": doc.get("supernet"), "twins": doc.get("twins")}


def _oriented(row, primary):
    """The primary score with higher = better (the loss negated)."""
    return row["supernet_top1"] if primary == "acc" else -row["supernet_loss"]


def _row(entry, top1, loss, seconds):
    """One scored table row; the stand-alone figures only where its runs have finished."""
    row = {"row": entry["row"], "block_choices": entry["block_choices"],
           "channel_choices": entry["channel_choices"], "flops": entry["flops"],
           "params": entry["params"], "in_band": entry["in_band"],
           "set": entry.get("set", "spread"), "supernet_top1": float(nan_for_null(top1)),
           "supernet_loss": float(nan_for_null(loss))}
    if seconds is not None:
        row["supernet_seconds"] = seconds
    if entry["runs"]:
        row.update(standalone_top1=entry["top1_mean"],
                   standalone_per_seed=[r["top1"] for r in entry["runs"]])
    return row


def _score_rows(cfg, table, evaluator, scores):
    """Score the table's rows (with ``score_all`` also those without runs, cached for later);
    returns the scored rows and, for those with ground truth, their per-image hits and
    losses."""
    todo = table["architectures"] if cfg.score_all else \
        [r for r in table["architectures"] if r["runs"]]
    rows, hits, losses = [], [], []
    bar = tqdm(todo, desc="scoring table architectures", unit="arch",
               disable=not cfg.progress)
    for entry in bar:
        arch = Architecture.parse(entry["block_choices"], entry["channel_choices"])
        hit1, loss, seconds = scores.get(arch, lambda: _score(evaluator, arch))
        rows.append(_row(entry, hit1.mean(), loss.mean(), seconds))
        if entry["runs"]:
            hits.append(hit1)
            losses.append(loss)
    bar.close()
    return rows, hits, losses


def _band_figures(table, rows, primary, cfg):
    """Tau within the search's FLOPs band with the table's ceilings there (None below 3)."""
    band = [r for r in rows if r["in_band"]]
    if len(band) < 3:
        return None
    corr = _correlations(band, "standalone_top1", cfg.bootstrap, cfg.seed)
    return {"k": len(band), "max_flops": table["band"]["max_flops"],
            "kendall_tau": corr[primary]["kendall_tau"],
            "spearman_rho": corr[primary]["spearman_rho"],
            "ceiling": seed_tau(table, band=True),
            "ceiling_two_seed_means": seed_tau(table, band=True, means=True)}


def _score_twins(cfg, rows, evaluator, scores, protocol):
    """The supernet's own noise floor: up to ``cfg.twins`` rows (spread over the table) scored
    as a twin that computes the same function class with other block choices at this input
    size (:func:`~oneshot_nas.ranking.equivalence.same_function_twin`)."""
    if not cfg.twins or not rows:
        return None
    picks = sorted({int(i * len(rows) / cfg.twins) for i in range(cfg.twins)}) \
        if cfg.twins < len(rows) else range(len(rows))
    pairs = []
    for i in picks:
        arch = Architecture.parse(rows[i]["block_choices"], rows[i]["channel_choices"])
        twin = same_function_twin(arch, protocol.image_size, protocol.channels_layout)
        if twin is None:
            continue
        hit1, loss, _ = scores.get(twin, lambda: _score(evaluator, twin))
        pairs.append({"row": rows[i]["row"], "twin_blocks": twin.block_string(),
                      "twin_top1": float(hit1.mean()), "twin_loss": float(loss.mean())})
    return pairs


def _twin_summary(pairs, rows, primary, input_size):
    """Each twin's gap to its row in the primary score, the mean gap and the gap over the
    spread (sd) of the scores over the table's rows with finished runs."""
    if pairs is None:
        return None
    by_row = {r["row"]: r for r in rows}
    out = []
    for p in pairs:
        if p["row"] not in by_row:
            continue                    # a row whose runs have not finished
        score = by_row[p["row"]]["score"]
        twin_score = p["twin_top1"] if primary == "acc" else -p["twin_loss"]
        out.append(dict(p, score=score, twin_score=twin_score, gap=abs(score - twin_score)))
    if not out:
        return {"pairs": [], "input_size": input_size}
    spread = float(np.std([r["score"] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
    gap = float(np.mean([p["gap"] for p in out]))
    return {"pairs": out, "input_size": input_size, "mean_gap": gap, "score_sd": spread,
            "gap_over_sd": gap / spread if spread else float("nan")}


def _write_scores(cfg, table, scored, primary):
    """Per-row scores of every scored table row -> ``scores.json``: ``score`` (higher is
    better, the primary score), ``top1`` and ``loss``; with the reliabilities, the scoring
    split, the supernet's file and digest and the twins' scores, enough for ``rank_check
    --scores`` to recompute every figure later without the weights."""
    name = _SCORE_NAMES[primary] if primary == "acc" else \
        "minus the held-out cross-entropy"
    rows = [{"row": r["row"], "score": _oriented(r, primary), "top1": r["supernet_top1"],
             "loss": r["supernet_loss"]} for r in scored["rows"]]
    doc = {"table": os.path.basename(cfg.benchmark),
           "score": "supernet %s (recalibrated BN) of %s" % (name, _files_text(cfg)),
           "primary": primary, "reliability": scored["reliability"], "split": scored["split"],
           "supernet": scored["supernet"], "update_bn_images": cfg.update_bn_images,
           "rows": rows, "twins": scored["twins"]}
    path = os.path.join(cfg.output_dir, "scores.json")
    atomic_write_json(path, doc, indent=1)
    return path


def _files_text(cfg):
    paths = supernet_files(cfg.supernet_params)
    return paths[0] if len(paths) == 1 else \
        "%s (mean over %d checkpoints, image by image)" % (", ".join(paths), len(paths))


def _write_results(results, output_dir):
    """The scatter and ``rank_check.json`` (atomically) into ``output_dir``."""
    results["plot"] = plot_ranking(results, os.path.join(output_dir, "ranking.png"))
    path = os.path.join(output_dir, "rank_check.json")
    atomic_write_json(path, results, indent=1)
    logger.info("wrote %s", path)
    results["results_path"] = path
    return results


def _scoring_key(cfg, split):
    """What a supernet score depends on: the weights, the scoring images, the recalibration."""
    digest = hashlib.sha1()
    if cfg.supernet_params and os.path.isfile(cfg.supernet_params):
        digest.update(file_digest(cfg.supernet_params).encode())
    digest.update(json.dumps([split.get("name"), split.get("images"), split.get("digest"),
                              cfg.update_bn_images, cfg.bn_group_size]).encode())
    return digest.hexdigest()[:16]


class _ScoreCache:
    """Per-image supernet scores of architectures, kept in an ``.npz`` beside the results so
    that a rerun (a table that has grown, another --score) scores nothing twice."""

    def __init__(self, path, key):
        self.path, self.key, self.arrays = path, key, {}
        if os.path.isfile(path):
            try:
                with np.load(path) as saved:
                    self.arrays = {k: saved[k] for k in saved.files}
            except (OSError, ValueError):
                logger.warning("ignoring unreadable score cache %s", path)

    def get(self, arch, compute):
        name = "%s_%s_%s" % (self.key, arch.block_string().replace(",", ""),
                             arch.channel_string().replace(",", ""))
        if name + "_hit" in self.arrays:
            return self.arrays[name + "_hit"], self.arrays[name + "_loss"], 0.0
        hit1, loss, seconds = compute()
        self.arrays[name + "_hit"], self.arrays[name + "_loss"] = hit1, loss

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **self.arrays)
        atomic_write(self.path, write)
        return hit1, loss, seconds


def _check_supernet_matches(params, table, protocol):
    """Refuse a supernet trained on another data set, at another input size or with other
    model flags (its JSON)."""
    config = read_record(params) or {}
    if config.get("dataset") and config["dataset"] != table["dataset"]:
        raise ValueError("the supernet %s was trained on %s, the table's nets on %s"
                         % (params, config["dataset"], table["dataset"]))
    if config.get("input_size") and int(config["input_size"]) != protocol.image_size:
        raise ValueError("the supernet %s was trained at %s px, the table's nets at %d px"
                         % (params, config["input_size"], protocol.image_size))
    for key, value in protocol.model_settings().items():
        if key in config and config[key] != value:
            raise ValueError("the supernet %s has %s=%s, the table's nets %s=%s"
                             % (params, key, config[key], key, value))


def _log_result(results):
    tau, rho = results["kendall_tau"], results["spearman_rho"]
    rel = results["reliability"]
    logger.info("primary supernet score: %s (reliability: accuracy %.3f, loss %.3f)",
                results["primary_score_name"], rel["acc"], rel["loss"])
    logger.info("Kendall tau %.3f [%.3f, %.3f], Spearman rho %.3f [%.3f, %.3f] (%d%% bootstrap "
                "intervals, K = %d, null sd %.2f)", tau["value"], tau["ci"][0], tau["ci"][1],
                rho["value"], rho["ci"][0], rho["ci"][1], 100 * tau["level"], results["k"],
                results["null_sd"])
    if not any(v > 0 for v in rel.values()):
        logger.warning("neither supernet score separates these architectures beyond its own "
                       "sampling noise on %d images (reliability <= 0): the supernet does not "
                       "rank them yet", results["split"]["images"])


def run_rank_check(cfg, counter=None, trainer=None, evaluator=None):
    """Rank check that trains its architectures stand-alone; returns the results dict (also
    written as JSON with a plot).

    Parameters
    ----------
    cfg : RankCheckConfig
    counter : callable, optional
        Vectorised FLOPs / params counter (default: the lookup table, ImageNet units).
    trainer : callable, optional
        Stand-alone trainer ``TrainConfig -> summary`` (default the project's trainer).
    evaluator : (CandidateEvaluator, split dict, holdout), optional
        Default: built from ``cfg.supernet_params``.
    """
    if cfg.num_archs < 3:
        raise ValueError("--num-archs must be at least 3 to rank, got %d" % cfg.num_archs)
    _check_score(cfg.score)
    if evaluator is None and not (cfg.supernet_params and os.path.isfile(cfg.supernet_params)):
        raise ValueError("--supernet-params file %s does not exist" % cfg.supernet_params)
    os.makedirs(cfg.output_dir, exist_ok=True)
    if counter is None:
        counter = FlopsCounter.for_model(cfg)
    constraints = Constraints.from_config(cfg)
    evaluator, split, holdout = evaluator or supernet_evaluator(
        cfg, cfg.protocol.dataset, cfg, train_subset=cfg.protocol.train_subset)
    protocol = cfg.protocol
    if protocol.dataset == "digits":
        # the digits protocol trains on the supernet's training images (its held-out split
        # left out); a table protocol keeps its own training subset
        protocol.holdout = holdout
    protocol.set_model(cfg)             # stand-alone nets of the supernet's shape
    cache = StandaloneCache(cfg.cache_file or os.path.join(cfg.output_dir,
                                                          "standalone_cache.json"))

    archs = sample_spread(cfg.num_archs, counter, constraints, seed=cfg.seed)
    logger.info("ranking check: %d architectures under %s, spread over FLOPs; supernet scores "
                "on the %s split (%d images), stand-alone accuracy on the validation split",
                len(archs), constraints, split["name"], split["images"])
    rows, hits, losses = [], [], []
    for n, arch in enumerate(archs, 1):
        hit1, loss, seconds = _score(evaluator, arch)
        hits.append(hit1)
        losses.append(loss)
        flops, params = FlopsCounter.wrap(counter).one(arch)
        row = {"arch": json.loads(arch.to_json()), "block_choices": arch.block_string(),
               "channel_choices": arch.channel_string(), "flops": flops, "params": params,
               "supernet_top1": float(hit1.mean()), "supernet_loss": float(loss.mean()),
               "supernet_seconds": seconds}
        standalone = train_standalone(arch, protocol, cache, trainer)
        row.update(standalone_top1=standalone["top1"], standalone_per_seed=standalone["per_seed"])
        rows.append(row)
        logger.info("[%d/%d] %.1f MFLOPs: supernet top-1 %.4f loss %.4f | stand-alone top-1 "
                    "%.4f", n, len(archs), row["flops"], row["supernet_top1"],
                    row["supernet_loss"], row["standalone_top1"])
    reliability, primary, correlations = _correlate(rows, "standalone_top1", hits, losses,
                                                    cfg.score, cfg.bootstrap, cfg.seed)
    standalone = np.array([r["standalone_top1"] for r in rows])
    spread = 100 * float(standalone.max() - standalone.min())
    results = {
        "mode": "train", "config": jsonable(asdict(cfg)), "constraints": str(constraints),
        "split": split, "protocol": jsonable(asdict(protocol)), "k": len(rows),
        "null_sd": tau_null_sd(len(rows)), "architectures": rows,
        "reliability": reliability, "primary_score": primary,
        "primary_score_name": _SCORE_NAMES[primary], "correlations": correlations,
        "kendall_tau": correlations[primary]["kendall_tau"],
        "spearman_rho": correlations[primary]["spearman_rho"],
        "standalone_spread_points": spread, "spread_ok": spread >= cfg.min_spread,
    }
    _log_result(results)
    if not results["spread_ok"]:
        logger.warning("stand-alone accuracies spread over %.1f points only (< %.1f): tau "
                       "measures training noise; lengthen the stand-alone protocol or widen "
                       "the constraints", spread, cfg.min_spread)
    return _write_results(results, cfg.output_dir)


def plot_ranking(results, path):
    """Supernet score vs stand-alone accuracy, one point per architecture -> PNG."""
    plt = pyplot()
    rows = results["architectures"]
    primary = results["primary_score"]
    x = np.array([r["supernet_top1"] * 100 if primary == "acc" else r["supernet_loss"]
                  for r in rows])
    y = np.array([r["standalone_top1"] * 100 for r in rows])
    flops = np.array([r["flops"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    points = ax.scatter(x, y, c=flops, cmap="viridis", s=36, edgecolor="k", linewidth=0.5)
    fig.colorbar(points, ax=ax, label="MFLOPs (224 px, 1000 classes)")
    for r, xi, yi in zip(rows, x, y):
        if len(r["standalone_per_seed"]) > 1:
            per = np.array(r["standalone_per_seed"]) * 100
            ax.plot([xi, xi], [per.min(), per.max()], color="0.6", lw=1, zorder=0)
        if r.get("in_band") is False:
            ax.scatter([xi], [yi], s=90, facecolor="none", edgecolor="tab:red", lw=0.8)
    if primary == "loss":
        ax.invert_xaxis()              # better to the right, as for accuracy
        ax.set_xlabel("supernet held-out cross-entropy (recalibrated; better to the right)")
    else:
        ax.set_xlabel("supernet held-out top-1 (%, recalibrated)")
    ax.set_ylabel("stand-alone test top-1 (%%, %s)"
                  % ("mean of seeds" if results.get("mode") == "benchmark" else "validation"))
    tau, rho = results["kendall_tau"], results["spearman_rho"]
    title = ("ranking check, K = %d\nKendall tau %.2f [%.2f, %.2f], Spearman rho %.2f "
             "[%.2f, %.2f]" % (len(rows), tau["value"], tau["ci"][0], tau["ci"][1],
                               rho["value"], rho["ci"][0], rho["ci"][1]))
    if results.get("ceiling"):
        c = results["ceiling"]
        title += "; table seed-to-seed tau %.2f" % c["value"]
    if results.get("band"):
        title += "\n(red rings: above the search's %g MFLOPs band)" % results["band"]["max_flops"]
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
