"""Does the supernet rank architectures like stand-alone training does? (the ranking check)

A one-shot search is only as good as the supernet's ranking. The check:

1. samples K architectures under the search's constraints (the search's sampler and lookup
   table), spread over the admissible size range: a pool of candidates is drawn from
   width-banded samplers (channel choices around each scale in turn), and K of them are taken
   at evenly spaced FLOPs quantiles, so small and large networks both appear and their
   stand-alone accuracies differ by more than the training noise;
2. trains each stand-alone with one short fixed recipe (:class:`StandaloneProtocol`, the
   project's trainer on the digits at 32 px: the same training images as the supernet, final
   epoch accuracy on the validation split, which neither the supernet nor the search saw);
   finished runs are cached in a JSON file keyed by protocol, architecture and seed, so a rerun
   trains nothing twice;
3. scores each inside the supernet: BN recalibrated on training images, then top-1 accuracy
   and cross-entropy loss on the held-out search split;
4. picks the less noisy supernet score as the primary one: for each score the share of its
   spread over the architectures that is not explained by the sampling noise of a few hundred
   images (``reliability = 1 - mean sampling variance / variance over architectures``); held-out
   accuracy moves in steps of 1/N and ties, the loss is continuous;
5. reports Kendall's tau and Spearman's rho between the supernet score and the stand-alone
   accuracy with percentile-bootstrap confidence intervals (resampling architectures), and
   the spread of the stand-alone accuracies (below 5 points tau would measure noise).

The statistics are written here with numpy (tau-b and average-rank rho, as scipy defines
them). The same stand-alone trainer backs :func:`run_winner_check`: the searched winner beside
random architectures under the same FLOPs limit.
"""
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..search_space import NUM_CHANNEL_CHOICES, Architecture
from ..files import atomic_write
from .algorithms import Constraints, sample_population

__all__ = ["kendall_tau", "spearman_rho", "bootstrap_ci", "rank_correlations",
           "score_reliability", "StandaloneProtocol", "StandaloneCache", "train_standalone",
           "sample_spread", "RankCheckConfig", "run_rank_check", "WinnerCheckConfig",
           "run_winner_check", "plot_ranking", "plot_winner"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# statistics
def kendall_tau(x, y):
    """Kendall's tau-b of two equally long sequences (ties in either one allowed).

    ``(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`` over all pairs, with
    ``n0 = n (n - 1) / 2``; NaN when one sequence is constant.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("kendall_tau needs two 1-d sequences of equal length")
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    both = float((dx * dy).sum())
    pairs_x, pairs_y = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return both / math.sqrt(pairs_x * pairs_y)


def _average_ranks(values):
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for stop in range(1, len(values) + 1):
        if stop == len(values) or sorted_values[stop] != sorted_values[start]:
            ranks[order[start:stop]] = 0.5 * (start + stop - 1) + 1
            start = stop
    return ranks


def spearman_rho(x, y):
    """Spearman's rho: Pearson correlation of the average ranks; NaN for a constant input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman_rho needs two 1-d sequences of equal length")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def bootstrap_ci(x, y, statistic, num_resamples=2000, level=0.95, seed=0):
    """Percentile-bootstrap interval of ``statistic(x, y)``, resampling pairs with replacement.

    Resamples where the statistic is undefined (NaN: all values tied) are dropped.

    Returns
    -------
    (low, high) : tuple of float
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(num_resamples)):
        pick = rng.integers(0, len(x), len(x))
        value = statistic(x[pick], y[pick])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def rank_correlations(x, y, num_resamples=2000, level=0.95, seed=0):
    """Kendall's tau and Spearman's rho with bootstrap intervals, as a JSON-able dict."""
    out = {}
    for name, fn in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho)):
        low, high = bootstrap_ci(x, y, fn, num_resamples, level, seed)
        out[name] = {"value": fn(x, y), "ci": [low, high], "level": level}
    return out


def score_reliability(per_image):
    """Share of a score's variance over architectures that is not sampling noise.

    Parameters
    ----------
    per_image : array (K architectures, N images)
        Per-image values whose mean is the score (0/1 hits, or losses).

    Returns
    -------
    float
        ``1 - mean_k(var_k / N) / var(means)``: 1 = noise-free ranking signal, <= 0 = the
        architectures differ less than the score's own sampling noise.
    """
    per_image = np.asarray(per_image, dtype=float)
    means = per_image.mean(axis=1)
    between = means.var(ddof=1) if len(means) > 1 else 0.0
    noise = float((per_image.var(axis=1, ddof=1) / per_image.shape[1]).mean())
    if between <= 0:
        return float("-inf") if noise > 0 else float("nan")
    return float(1.0 - noise / between)


# ---------------------------------------------------------------------------------------------
# stand-alone training
@dataclass
class StandaloneProtocol:
    """The short, fixed stand-alone recipe (digits, 32 px): the ranking's ground truth.

    Accuracy = top-1 on the validation split after the last epoch (never the best epoch),
    averaged over ``seeds``. Training images: the supernet's (the training split minus the
    held-out search split).

    Measured on the 2-core machine (1,078 training images, batch 64, NAG, cosine; OneShot
    layout with SE and last conv after pooling; seeds 0 / 1):

    * 3 epochs (lr 0.2 or 0.05): validation top-1 anywhere between 10 % and 83 % for the same
      architecture: these nets sit at chance for 2-3 epochs (the validation accuracy lags the
      training accuracy while the BN running statistics catch up) and leave it at a random
      moment, so a 3-epoch accuracy mostly measures the seed;
    * 6 epochs, lr 0.1, 1 warm-up epoch (the defaults): 93-97.5 %; the two seeds of one
      architecture differ by 1-4 points, the means of four architectures from all-0.2x
      (71 MFLOPs) to all-2.0x (507 MFLOPs) by 3 points. Two seeds are the default for that
      reason; whether the spread reaches 5 points under a given FLOPs limit is what the check
      itself reports (``standalone_spread_points``).
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
    channels_layout: str = "OneShot"
    use_se: bool = True
    last_conv_after_pooling: bool = True
    max_batches_per_epoch: int = 0       # tests only

    def key(self, arch, seed):
        """Cache key: everything that changes the result."""
        settings = {k: v for k, v in asdict(self).items() if k != "seeds"}
        return json.dumps({"protocol": settings, "arch": json.loads(arch.to_json()),
                           "seed": int(seed)}, sort_keys=True)

    def train_config(self, arch, seed, num_workers=0):
        """The :class:`~oneshot_nas.training.TrainConfig` of one stand-alone run."""
        from ..training import TrainConfig
        return TrainConfig(
            dataset="digits", input_size=32, batch_size=self.batch_size, num_workers=num_workers,
            model="ShuffleNas_fixArch", block_choices=arch.block_string(),
            channel_choices=arch.channel_string(), channels_layout=self.channels_layout,
            use_se=self.use_se, last_conv_after_pooling=self.last_conv_after_pooling,
            num_epochs=self.epochs, lr=self.lr, wd=self.wd, optimizer=self.optimizer,
            lr_mode="cosine", warmup_epochs=self.warmup_epochs, no_wd=True,
            no_augment=not self.augment, holdout_search=self.holdout, seed=int(seed),
            save_dir="", metrics_file=None, progress=False, log_interval=0,
            max_batches_per_epoch=self.max_batches_per_epoch)


class StandaloneCache:
    """Finished stand-alone runs in a JSON file, written after every run (atomically)."""

    def __init__(self, path):
        self.path = path
        self.runs = {}
        if path and os.path.isfile(path):
            try:
                with open(path) as f:
                    self.runs = json.load(f).get("runs", {})
            except (OSError, ValueError):
                logger.warning("ignoring unreadable stand-alone cache %s", path)
        if self.runs:
            logger.info("stand-alone cache %s: %d finished runs", path, len(self.runs))

    def get(self, key):
        return self.runs.get(key)

    def put(self, key, record):
        self.runs[key] = record
        if self.path:
            text = json.dumps({"runs": self.runs}, indent=1)

            def write(tmp):
                with open(tmp, "w") as f:
                    f.write(text)
            atomic_write(self.path, write)


def train_standalone(arch, protocol, cache=None, trainer=None):
    """Stand-alone validation top-1 of ``arch`` (mean over the protocol's seeds).

    Parameters
    ----------
    arch : Architecture
    protocol : StandaloneProtocol
    cache : StandaloneCache, optional
        Finished runs are taken from it and new ones added to it.
    trainer : callable, optional
        ``TrainConfig -> summary`` (default :func:`oneshot_nas.training.train`).

    Returns
    -------
    dict
        ``top1`` (mean), ``per_seed`` (list), ``seconds`` (training time of new runs).
    """
    if trainer is None:
        from ..training import train as trainer
    per_seed, seconds = [], 0.0
    for seed in protocol.seeds:
        key = protocol.key(arch, seed)
        record = cache.get(key) if cache is not None else None
        if record is None:
            tic = time.perf_counter()
            summary = trainer(protocol.train_config(arch, seed))
            last = summary["epochs"][-1]
            record = {"top1": float(last["val_top1"]), "train_accuracy":
                      float(last.get("train_accuracy", float("nan"))),
                      "seconds": time.perf_counter() - tic}
            seconds += record["seconds"]
            logger.info("stand-alone %s seed %d: top-1 %.4f (%.0f s)", arch, seed,
                        record["top1"], record["seconds"])
            if cache is not None:
                cache.put(key, record)
        per_seed.append(record["top1"])
    return {"top1": float(np.mean(per_seed)), "per_seed": per_seed, "seconds": seconds}


# ---------------------------------------------------------------------------------------------
# sampling
def sample_spread(k, counter, constraints, seed=0, pool_per_band=200, band_halfwidth=1):
    """``k`` distinct architectures under ``constraints``, spread over the admissible FLOPs.

    A pool is drawn from width bands (channel choices in ``[c - h, c + h]`` for every scale
    ``c``; bands the constraints exclude are skipped); then the architectures at the FLOPs
    quantiles ``(i + 0.5) / k`` are taken.

    Returns
    -------
    list of Architecture, sorted by FLOPs
    """
    rng = np.random.default_rng(seed)
    blocks, channels = [], []
    for centre in range(NUM_CHANNEL_CHOICES):
        band = (max(0, centre - band_halfwidth),
                min(NUM_CHANNEL_CHOICES - 1, centre + band_halfwidth))
        try:
            b, c = sample_population(rng, pool_per_band, counter, constraints,
                                     channel_range=band, max_tries=20 * 1024)
        except ValueError:
            continue                # this width band lies outside the constraints
        blocks.append(b)
        channels.append(c)
    if not blocks:
        raise ValueError("the constraints (%s) admit no architecture; relax them" % constraints)
    blocks, channels = np.concatenate(blocks), np.concatenate(channels)
    flops, _ = counter(blocks, channels)
    order = np.argsort(flops, kind="stable")
    picks, used, n = [], set(), len(order)
    for q in (np.arange(k) + 0.5) / k:
        target, found = int(q * n), None
        # the quantile's pool member, or its nearest unused neighbour in FLOPs order
        for step in range(n):
            for pos in (target + step, target - step):
                if 0 <= pos < n:
                    arch = Architecture(blocks[order[pos]], channels[order[pos]])
                    if arch not in used:
                        found = arch
                        break
            if found is not None:
                break
        if found is None:
            raise ValueError("the constraints (%s) admit fewer than %d distinct architectures"
                             % (constraints, k))
        used.add(found)
        picks.append(found)
    return sorted(picks, key=lambda a: float(counter(np.array([a.blocks]),
                                                     np.array([a.channels]))[0][0]))


# ---------------------------------------------------------------------------------------------
# the ranking check
@dataclass
class RankCheckConfig:
    """Settings of :func:`run_rank_check` (names follow the flags of ``rank_check``)."""

    supernet_params: str = None
    channels_layout: str = "OneShot"
    use_se: bool = True
    last_conv_after_pooling: bool = True
    num_archs: int = 12
    seed: int = 0
    # constraints (MFLOPs / M params at 224 px, 1000 classes), as in the search
    max_flops: float = None
    max_params: float = None
    comparison_model: str = None
    flop_max: float = None
    param_max: float = None
    normalised_score_max: float = None
    # supernet scoring
    holdout_search: int = None
    update_bn_images: int = 1024
    bn_group_size: int = 32
    batch_size: int = 128
    score: str = "auto"                 # auto | acc | loss
    bootstrap: int = 2000
    # stand-alone protocol
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol)
    min_spread: float = 5.0             # points
    output_dir: str = "rank_check"
    cache_file: str = None              # default output_dir/standalone_cache.json


def _constraints(cfg):
    return Constraints.build(cfg.comparison_model, cfg.flop_max, cfg.param_max, cfg.max_flops,
                             cfg.max_params, cfg.normalised_score_max)


def _search_data_config(cfg):
    """The data fields :func:`~oneshot_nas.search.runner.load_search_data` reads (digits)."""
    from .runner import SearchConfig
    return SearchConfig(dataset="digits", input_size=32, batch_size=cfg.batch_size,
                        num_workers=0, update_bn_images=cfg.update_bn_images,
                        seed=cfg.seed)


def _supernet_evaluator(cfg):
    """Supernet + scoring data + evaluator; returns ``(evaluator, split, holdout)``."""
    import mxnet as mx

    from .evaluator import CandidateEvaluator
    from .runner import load_search_data, load_supernet, resolve_holdout
    ctx = mx.cpu()
    holdout, known = resolve_holdout(cfg.holdout_search, cfg.supernet_params)
    data = load_search_data(_search_data_config(cfg), ctx, holdout, known)
    supernet = load_supernet(cfg.supernet_params, data.info.num_classes, ctx,
                             channels_layout=cfg.channels_layout, use_se=cfg.use_se,
                             last_conv_after_pooling=cfg.last_conv_after_pooling)
    evaluator = CandidateEvaluator(supernet, data.calib, data.scoring, ctx, cfg.bn_group_size,
                                   cfg.batch_size)
    return evaluator, data.split, holdout


def _protocol_for(cfg, holdout):
    protocol = cfg.protocol
    protocol.holdout = holdout
    protocol.channels_layout = cfg.channels_layout
    protocol.use_se, protocol.last_conv_after_pooling = cfg.use_se, cfg.last_conv_after_pooling
    return protocol


def run_rank_check(cfg, counter=None, trainer=None, evaluator=None):
    """Run the ranking check; returns the results dict (also written as JSON with a plot).

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
    if cfg.score not in ("auto", "acc", "loss"):
        raise ValueError("unknown --score %r; choose auto, acc or loss" % cfg.score)
    if evaluator is None and not (cfg.supernet_params and os.path.isfile(cfg.supernet_params)):
        raise ValueError("--supernet-params file %s does not exist" % cfg.supernet_params)
    os.makedirs(cfg.output_dir, exist_ok=True)
    if counter is None:
        from ..profiling import LookupTable
        counter = LookupTable.load_or_build(
            input_size=224, classes=1000, channels_layout=cfg.channels_layout,
            use_se=cfg.use_se, last_conv_after_pooling=cfg.last_conv_after_pooling
        ).flops_params_many
    constraints = _constraints(cfg)
    evaluator, split, holdout = evaluator or _supernet_evaluator(cfg)
    protocol = _protocol_for(cfg, holdout)
    cache = StandaloneCache(cfg.cache_file or os.path.join(cfg.output_dir,
                                                          "standalone_cache.json"))

    archs = sample_spread(cfg.num_archs, counter, constraints, seed=cfg.seed)
    logger.info("ranking check: %d architectures under %s, spread over FLOPs; supernet scores "
                "on the %s split (%d images), stand-alone accuracy on the validation split",
                len(archs), constraints, split["name"], split["images"])
    rows, hits, losses = [], [], []
    for n, arch in enumerate(archs, 1):
        tic = time.perf_counter()
        subnet = evaluator.prepare_subnet(arch)
        hit1, _, loss = evaluator.per_image(subnet)
        hits.append(hit1.astype(float))
        losses.append(loss)
        flops, params = counter(np.array([arch.blocks]), np.array([arch.channels]))
        row = {"arch": json.loads(arch.to_json()), "block_choices": arch.block_string(),
               "channel_choices": arch.channel_string(), "flops": float(flops[0]),
               "params": float(params[0]), "supernet_top1": float(hit1.mean()),
               "supernet_loss": float(loss.mean()),
               "supernet_seconds": time.perf_counter() - tic}
        standalone = train_standalone(arch, protocol, cache, trainer)
        row.update(standalone_top1=standalone["top1"], standalone_per_seed=standalone["per_seed"])
        rows.append(row)
        logger.info("[%d/%d] %.1f MFLOPs: supernet top-1 %.4f loss %.4f | stand-alone top-1 "
                    "%.4f", n, len(archs), row["flops"], row["supernet_top1"],
                    row["supernet_loss"], row["standalone_top1"])

    standalone = np.array([r["standalone_top1"] for r in rows])
    scores = {"acc": np.array([r["supernet_top1"] for r in rows]),
              "loss": -np.array([r["supernet_loss"] for r in rows])}   # higher = better
    reliability = {"acc": score_reliability(hits), "loss": score_reliability(losses)}
    if cfg.score == "auto":
        finite = {k: v for k, v in reliability.items() if not math.isnan(v)}
        primary = max(finite, key=finite.get) if finite else "loss"
    else:
        primary = cfg.score
    correlations = {name: rank_correlations(values, standalone, cfg.bootstrap, seed=cfg.seed)
                    for name, values in scores.items()}
    spread = 100 * float(standalone.max() - standalone.min())
    results = {
        "config": _jsonable(asdict(cfg)), "constraints": str(constraints), "split": split,
        "protocol": _jsonable(asdict(protocol)), "architectures": rows,
        "reliability": reliability, "primary_score": primary,
        "primary_score_name": _SCORE_NAMES[primary], "correlations": correlations,
        "kendall_tau": correlations[primary]["kendall_tau"],
        "spearman_rho": correlations[primary]["spearman_rho"],
        "standalone_spread_points": spread, "spread_ok": spread >= cfg.min_spread,
    }
    tau, rho = results["kendall_tau"], results["spearman_rho"]
    logger.info("primary supernet score: %s (reliability: accuracy %.3f, loss %.3f)",
                _SCORE_NAMES[primary], reliability["acc"], reliability["loss"])
    logger.info("Kendall tau %.3f [%.3f, %.3f], Spearman rho %.3f [%.3f, %.3f] (%d%% "
                "bootstrap intervals, %d architectures)", tau["value"], tau["ci"][0],
                tau["ci"][1], rho["value"], rho["ci"][0], rho["ci"][1], 100 * tau["level"],
                len(rows))
    if not any(v > 0 for v in reliability.values()):
        logger.warning("neither supernet score separates these architectures beyond its own "
                       "sampling noise on %d images (reliability <= 0): the supernet does not "
                       "rank them yet", split["images"])
    if not results["spread_ok"]:
        logger.warning("stand-alone accuracies spread over %.1f points only (< %.1f): tau "
                       "measures training noise; lengthen the stand-alone protocol or widen "
                       "the constraints", spread, cfg.min_spread)
    results["plot"] = plot_ranking(results, os.path.join(cfg.output_dir, "ranking.png"))
    path = os.path.join(cfg.output_dir, "rank_check.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    logger.info("wrote %s", path)
    results["results_path"] = path
    return results


_SCORE_NAMES = {"acc": "held-out top-1", "loss": "held-out cross-entropy (lower is better)"}


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: list(o) if isinstance(o, tuple)
                                 else str(o)))


def plot_ranking(results, path):
    """Supernet score vs stand-alone accuracy, one point per architecture -> PNG."""
    from ..plotting import pyplot, save_figure
    plt = pyplot()
    rows = results["architectures"]
    primary = results["primary_score"]
    x = np.array([r["supernet_top1"] * 100 if primary == "acc" else r["supernet_loss"]
                  for r in rows])
    y = np.array([r["standalone_top1"] * 100 for r in rows])
    flops = np.array([r["flops"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    points = ax.scatter(x, y, c=flops, cmap="viridis", s=36, edgecolor="k", linewidth=0.5)
    fig.colorbar(points, ax=ax, label="MFLOPs (224 px, 1000 classes)")
    for r, xi, yi in zip(rows, x, y):
        if len(r["standalone_per_seed"]) > 1:
            per = np.array(r["standalone_per_seed"]) * 100
            ax.plot([xi, xi], [per.min(), per.max()], color="0.6", lw=1, zorder=0)
    if primary == "loss":
        ax.invert_xaxis()              # better to the right, as for accuracy
        ax.set_xlabel("supernet held-out cross-entropy (recalibrated; better to the right)")
    else:
        ax.set_xlabel("supernet held-out top-1 (%, recalibrated)")
    ax.set_ylabel("stand-alone validation top-1 (%)")
    tau, rho = results["kendall_tau"], results["spearman_rho"]
    ax.set_title("ranking check, %d architectures\nKendall tau %.2f [%.2f, %.2f], Spearman rho "
                 "%.2f [%.2f, %.2f]" % (len(rows), tau["value"], tau["ci"][0], tau["ci"][1],
                                        rho["value"], rho["ci"][0], rho["ci"][1]), fontsize=10)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# the searched winner against random architectures
@dataclass
class WinnerCheckConfig:
    """Settings of :func:`run_winner_check` (flags of ``winner_check``)."""

    search_results: str = None          # search_results.json of the search
    num_random: int = 10
    seed: int = 0
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol)
    output_dir: str = "winner_check"
    cache_file: str = None


def run_winner_check(cfg, counter=None, trainer=None):
    """Train the search's winner and ``num_random`` random architectures under the same
    constraints stand-alone (the ranking check's protocol); returns the results dict."""
    from .runner import resolve_holdout
    if not cfg.search_results or not os.path.isfile(cfg.search_results):
        raise ValueError("--search-results file %s does not exist" % cfg.search_results)
    try:
        with open(cfg.search_results) as f:
            search = json.load(f)
        scfg = search["config"]
        winner = Architecture(search["topk"][0]["blocks"], search["topk"][0]["channels"])
    except (OSError, ValueError, KeyError, IndexError):
        raise ValueError("--search-results %s is not a search_results.json with a top-k"
                         % cfg.search_results) from None
    if cfg.num_random < 1:
        raise ValueError("--num-random must be at least 1, got %d" % cfg.num_random)
    os.makedirs(cfg.output_dir, exist_ok=True)
    model_cfg = dict(channels_layout=scfg.get("channels_layout", "OneShot"),
                     use_se=scfg.get("use_se", False),
                     last_conv_after_pooling=scfg.get("last_conv_after_pooling", False))
    if counter is None:
        from ..profiling import LookupTable
        counter = LookupTable.load_or_build(input_size=224, classes=1000,
                                            **model_cfg).flops_params_many
    constraints = Constraints.build(scfg.get("comparison_model"), scfg.get("flop_max"),
                                    scfg.get("param_max"), scfg.get("max_flops"),
                                    scfg.get("max_params"), scfg.get("normalised_score_max"))
    split = search.get("split") or {}
    holdout = split.get("holdout")
    if holdout is None:
        holdout, _ = resolve_holdout(None, scfg.get("supernet_params"))
    protocol = cfg.protocol
    protocol.holdout = int(holdout or 0)
    protocol.channels_layout = model_cfg["channels_layout"]
    protocol.use_se = model_cfg["use_se"]
    protocol.last_conv_after_pooling = model_cfg["last_conv_after_pooling"]
    cache = StandaloneCache(cfg.cache_file or os.path.join(cfg.output_dir,
                                                          "standalone_cache.json"))
    rng = np.random.default_rng([cfg.seed, 4242])
    fixed = [None, None]
    for i, key in enumerate(("fixed_block_choices", "fixed_channel_choices")):
        if scfg.get(key):
            arch = Architecture.parse(scfg[key] if i == 0 else ",".join(["0"] * 20),
                                      scfg[key] if i == 1 else None)
            fixed[i] = np.array(arch.blocks if i == 0 else arch.channels)
    # drawn as the random search draws (uniform under the constraints, the same fixed genes)
    blocks, channels = sample_population(rng, cfg.num_random, counter, constraints, *fixed)
    randoms = [Architecture(b, c) for b, c in zip(blocks, channels)]
    logger.info("winner check: the search's best and %d random architectures under %s, "
                "trained stand-alone", len(randoms), constraints)

    def row(arch, what):
        flops, params = counter(np.array([arch.blocks]), np.array([arch.channels]))
        res = train_standalone(arch, protocol, cache, trainer)
        return {"role": what, "arch": json.loads(arch.to_json()),
                "block_choices": arch.block_string(), "channel_choices": arch.channel_string(),
                "flops": float(flops[0]), "params": float(params[0]),
                "standalone_top1": res["top1"], "standalone_per_seed": res["per_seed"]}
    win = row(winner, "winner")
    rand_rows = [row(a, "random") for a in randoms]
    accs = np.array([r["standalone_top1"] for r in rand_rows])
    results = {
        "search_results": cfg.search_results, "constraints": str(constraints),
        "protocol": _jsonable(asdict(protocol)), "winner": win, "random": rand_rows,
        "random_median_top1": float(np.median(accs)), "random_best_top1": float(accs.max()),
        "random_worst_top1": float(accs.min()),
        "winner_beats_median": bool(win["standalone_top1"] > np.median(accs)),
        "winner_rank": int(1 + (accs > win["standalone_top1"]).sum()),
    }
    logger.info("winner stand-alone top-1 %.4f; %d random: median %.4f, best %.4f, worst %.4f; "
                "winner ranks %d of %d", win["standalone_top1"], len(accs),
                results["random_median_top1"], results["random_best_top1"],
                results["random_worst_top1"], results["winner_rank"], len(accs) + 1)
    results["plot"] = plot_winner(results, os.path.join(cfg.output_dir, "winner_vs_random.png"))
    path = os.path.join(cfg.output_dir, "winner_check.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    results["results_path"] = path
    return results


def plot_winner(results, path):
    """Stand-alone top-1 vs MFLOPs: random architectures and the searched winner -> PNG."""
    from ..plotting import pyplot, save_figure
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    rand = results["random"]
    ax.scatter([r["flops"] for r in rand], [100 * r["standalone_top1"] for r in rand], s=30,
               color="tab:gray", label="random under the limit (%d)" % len(rand))
    ax.axhline(100 * results["random_median_top1"], color="tab:gray", ls="--", lw=1,
               label="random median %.1f %%" % (100 * results["random_median_top1"]))
    win = results["winner"]
    ax.scatter([win["flops"]], [100 * win["standalone_top1"]], marker="*", s=220,
               color="tab:red", edgecolor="k", label="searched winner %.1f %%"
               % (100 * win["standalone_top1"]), zorder=3)
    ax.set_xlabel("MFLOPs (224 px, 1000 classes)")
    ax.set_ylabel("stand-alone validation top-1 (%)")
    ax.set_title("searched winner vs random architectures (%s)" % results["constraints"],
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
