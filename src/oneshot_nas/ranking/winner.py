"""The searched winner trained stand-alone beside random architectures under the same
constraints, with the same protocol and cache as the ranking check.

Given a stored table (``--benchmark``), the winner is trained with the table's protocol instead
and placed among the table's architectures under the search's FLOPs limit (its percentile):
nothing but the winner is trained.
"""
import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from ..files import atomic_write_json
from ..plotting import pyplot, save_figure
from ..profiling import FlopsCounter
from ..search.algorithms import Constraints, sample_population
from ..search.runner import fixed_genes, resolve_holdout
from ..search_space import Architecture
from .check import jsonable
from .protocol import StandaloneCache, StandaloneProtocol, train_standalone
from .stats import spread_against_noise
from .table import load_table, spec_from_table

__all__ = ["WinnerCheckConfig", "run_winner_check", "plot_winner", "read_search_results",
           "percentile_interval", "flops_line"]

logger = logging.getLogger(__name__)


@dataclass
class WinnerCheckConfig:
    """Settings of :func:`run_winner_check` (flags of ``winner_check``)."""

    search_results: str = None          # search_results.json of the search
    num_random: int = 10
    seed: int = 0
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol)
    output_dir: str = "winner_check"
    cache_file: str = None
    benchmark: str = None               # a stored table: compare with its rows instead
    seeds: tuple = None                 # seeds of the winner's runs with --benchmark (default:
                                        # as many as the table's matched (else band) rows have,
                                        # at least 2)
    command: str = None                 # the command line, kept in the results


def run_winner_check(cfg, counter=None, trainer=None):
    """Train the search's winner and ``num_random`` random architectures under the same
    constraints stand-alone (the ranking check's protocol); returns the results dict."""
    search, scfg, winner = read_search_results(cfg.search_results)
    if cfg.benchmark:
        return _winner_against_table(cfg, search, scfg, winner, counter, trainer)
    if cfg.num_random < 1:
        raise ValueError("--num-random must be at least 1, got %d" % cfg.num_random)
    os.makedirs(cfg.output_dir, exist_ok=True)
    counter = FlopsCounter.for_model(scfg) if counter is None else FlopsCounter.wrap(counter)
    constraints = Constraints.from_config(scfg)
    split = search.get("split") or {}
    holdout = split.get("holdout")
    if holdout is None:
        holdout, _ = resolve_holdout(None, scfg.get("supernet_params"))
    protocol = cfg.protocol
    protocol.holdout = int(holdout or 0)
    protocol.set_model(scfg)            # stand-alone nets of the searched supernet's shape
    cache = StandaloneCache(cfg.cache_file or os.path.join(cfg.output_dir,
                                                          "standalone_cache.json"))
    rng = np.random.default_rng([cfg.seed, 4242])
    # drawn as the random search draws (uniform under the constraints, the same fixed genes)
    blocks, channels = sample_population(rng, cfg.num_random, counter, constraints,
                                         *fixed_genes(scfg))
    randoms = [Architecture(b, c) for b, c in zip(blocks, channels)]
    logger.info("winner check: the search's best and %d random architectures under %s, "
                "trained stand-alone", len(randoms), constraints)

    def row(arch, what):
        flops, params = counter.one(arch)
        res = train_standalone(arch, protocol, cache, trainer)
        return {"role": what, "arch": json.loads(arch.to_json()),
                "block_choices": arch.block_string(), "channel_choices": arch.channel_string(),
                "flops": flops, "params": params,
                "standalone_top1": res["top1"], "standalone_per_seed": res["per_seed"]}
    win = row(winner, "winner")
    rand_rows = [row(a, "random") for a in randoms]
    accs = np.array([r["standalone_top1"] for r in rand_rows])
    results = {
        "search_results": cfg.search_results, "constraints": str(constraints),
        "protocol": jsonable(asdict(protocol)), "winner": win, "random": rand_rows,
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
    atomic_write_json(path, results, indent=1)
    results["results_path"] = path
    return results


def read_search_results(path):
    """``(search dict, its config, the winner)`` of a ``search_results.json``."""
    if not path or not os.path.isfile(path):
        raise ValueError("--search-results file %s does not exist" % path)
    try:
        with open(path) as f:
            search = json.load(f)
        scfg = search["config"]
        winner = Architecture(search["topk"][0]["blocks"], search["topk"][0]["channels"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise ValueError("--search-results %s is not a search_results.json with a top-k"
                         % path) from None
    return search, scfg, winner


def table_seeds(table):
    """Seeds ``0 .. n - 1`` for a winner placed among a table's peers: ``n`` is what its
    FLOPs-matched rows (else its band rows) were trained with, at least 2."""
    spec = spec_from_table(table)
    return tuple(range(max(2, spec.matched_seeds if spec.matched_k else spec.band_seeds)))


def _table_peers(table, constraints, name):
    """The rows a winner is placed among: the FLOPs-matched set when the table has one (the
    search runs under its target), else the rows that satisfy the search's constraints."""
    matched = [r for r in table["architectures"] if r["runs"] and r.get("set") == "matched"]
    if matched:
        return matched, "the FLOPs-matched set"
    peers = [r for r in table["architectures"] if r["runs"] and
             bool(constraints.satisfied(np.array([r["flops"]]), np.array([r["params"]]))[0])]
    if not peers:
        raise ValueError("no architecture of %s satisfies the search's constraints (%s)"
                         % (name, constraints))
    return peers, "table rows under %s" % constraints


def flops_line(table, flops, top1):
    """Where a stand-alone result sits against the table's FLOPs line: a least-squares line of
    the mean top-1 on log FLOPs over the table's band rows with runs (all rows with runs when
    fewer than 3 are in the band); None below 3 rows. ``residual`` is ``top1`` minus the line
    at ``flops``: what the architecture gains over its size, comparable between winners of
    different FLOPs."""
    rows = [r for r in table["architectures"] if r["runs"] and r["in_band"]]
    over = "band rows"
    if len(rows) < 3:
        rows, over = [r for r in table["architectures"] if r["runs"]], "rows"
    if len(rows) < 3:
        return None
    x = np.log(np.array([r["flops"] for r in rows], dtype=float))
    y = np.array([r["top1_mean"] for r in rows], dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    predicted = float(intercept + slope * np.log(flops))
    return {"rows": len(rows), "over": over, "slope_per_log_flops": float(slope),
            "intercept": float(intercept), "predicted_top1": predicted,
            "residual": float(top1 - predicted),
            "residual_sd": float(np.std(y - (intercept + slope * x), ddof=2))
            if len(rows) > 2 else float("nan")}


def _matched_window(table, flops):
    """The table's FLOPs-matched window and whether ``flops`` lies in it (None: no set)."""
    sampling = table.get("sampling", {})
    if not sampling.get("matched_k"):
        return None
    target, tol = sampling["matched_flops"], sampling["matched_tolerance"]
    low, high = target * (1 - tol), target * (1 + tol)
    return {"flops": [low, high], "inside": bool(low <= flops <= high)}


def _winner_against_table(cfg, search, scfg, winner, counter, trainer):
    """The winner trained with the table's protocol, placed among the table's architectures
    that satisfy the search's constraints."""
    table = load_table(cfg.benchmark)
    seeds = cfg.seeds or table_seeds(table)
    logger.info("the winner is trained with seeds %s (%s)", list(seeds),
                "as asked" if cfg.seeds else "as many as the table's peer rows have")
    protocol = StandaloneProtocol.from_dict(dict(table["protocol"], seeds=list(seeds)))
    for key in ("channels_layout", "use_se", "last_conv_after_pooling"):
        if key in scfg and scfg[key] != getattr(protocol, key):
            raise ValueError("the search used %s=%s, the table's nets %s=%s: they are different "
                             "networks" % (key, scfg[key], key, getattr(protocol, key)))
    os.makedirs(cfg.output_dir, exist_ok=True)
    if counter is None:
        counter = FlopsCounter.for_model(protocol)
    constraints = Constraints.from_config(scfg)
    peers, peer_name = _table_peers(table, constraints, cfg.benchmark)
    cache = StandaloneCache(cfg.cache_file or os.path.join(cfg.output_dir,
                                                          "standalone_cache.json"))
    res = train_standalone(winner, protocol, cache, trainer)
    flops, params = FlopsCounter.wrap(counter).one(winner)
    accs = np.array([r["top1_mean"] for r in peers])
    noise = percentile_interval(res["per_seed"], [[x["top1"] for x in r["runs"]] for r in peers],
                                seed=cfg.seed)
    results = {
        "mode": "benchmark", "benchmark": cfg.benchmark, "search_results": cfg.search_results,
        "command": cfg.command, "search_mode": scfg.get("search_mode"),
        "search_seed": scfg.get("seed"), "peers": peer_name,
        "constraints": str(constraints), "protocol": protocol.to_dict(),
        "winner": {"role": "winner", "block_choices": winner.block_string(),
                   "channel_choices": winner.channel_string(), "flops": flops,
                   "params": params, "standalone_top1": res["top1"],
                   "standalone_per_seed": res["per_seed"]},
        "random": [{"role": "table", "row": r["row"], "block_choices": r["block_choices"],
                    "channel_choices": r["channel_choices"], "flops": r["flops"],
                    "params": r["params"], "standalone_top1": r["top1_mean"],
                    "standalone_per_seed": [x["top1"] for x in r["runs"]]} for r in peers],
        "percentile": _percentile(res["top1"], accs), "percentile_noise": noise,
        "random_median_top1": float(np.median(accs)), "random_best_top1": float(accs.max()),
        "random_worst_top1": float(accs.min()),
        "winner_beats_median": bool(res["top1"] > np.median(accs)),
        "winner_rank": int(1 + (accs > res["top1"]).sum()),
    }
    results["flops_line"] = flops_line(table, flops, res["top1"])
    results["matched_window"] = _matched_window(table, flops)
    line = results["flops_line"]
    if line is not None:
        logger.info("FLOPs line over %d %s (mean top-1 on log FLOPs): %.4f predicted at %.1f "
                    "MFLOPs; the winner is %+.4f from it, the rows' residual sd %.4f",
                    line["rows"], line["over"], line["predicted_top1"], flops,
                    line["residual"], line["residual_sd"])
    window = results["matched_window"]
    if window is not None and not window["inside"]:
        logger.warning("the winner's %.1f MFLOPs lie outside the matched set's window %.1f-%.1f: "
                       "its percentile mixes what the search found with its size; its distance "
                       "from the FLOPs line does not", flops, *window["flops"])
    logger.info("winner stand-alone top-1 %.4f (seeds %s); %d architectures of %s: "
                "median %.4f, best %.4f; the winner's percentile %.0f", res["top1"],
                list(seeds), len(accs), peer_name, results["random_median_top1"],
                results["random_best_top1"], results["percentile"])
    if noise is not None:
        logger.info("seed noise: sd %.4f (pooled over %d architectures with 2+ seeds); the "
                    "percentile's 95 %% interval [%.0f, %.0f], top quarter in %.0f %% of draws",
                    noise["seed_sd"], noise["architectures_with_seeds"], *noise["ci"],
                    100 * noise["p_top_quarter"])
    else:
        logger.info("no architecture has two seeds: the percentile's seed noise is unknown")
    results["plot"] = plot_winner(results, os.path.join(cfg.output_dir, "winner_vs_table.png"))
    path = os.path.join(cfg.output_dir, "winner_check.json")
    atomic_write_json(path, results, indent=1)
    results["results_path"] = path
    return results


def _percentile(value, accs):
    """Share of ``accs`` below ``value`` (ties count half), in percent."""
    accs = np.asarray(accs, dtype=float)
    return 100.0 * float((accs < value).sum() + 0.5 * (accs == value).sum()) / len(accs)


def percentile_interval(winner_runs, peer_runs, draws=2000, level=0.95, seed=0):
    """How far seed noise alone moves the winner's percentile among its peers.

    ``winner_runs`` / ``peer_runs``: per-seed top-1 of the winner and of each peer. The seed
    standard deviation is pooled over every architecture with two or more seeds (one sd for
    all, as the table's statistics assume); each draw replaces every mean by a normal draw
    around it with variance sd^2 / its number of seeds, then takes the winner's percentile.

    Returns
    -------
    dict or None
        ``seed_sd``, ``architectures_with_seeds``, ``ci`` (the percentile's interval),
        ``level``, ``p_top_quarter`` (share of draws with percentile >= 75), ``draws``; None
        when no architecture has two seeds.
    """
    noise = spread_against_noise([r for r in [winner_runs] + list(peer_runs) if len(r)])
    if not noise["rows_with_seeds"]:
        return None
    sd = noise["seed_sd"]
    rng = np.random.default_rng([seed, 7575])
    means = np.array([np.mean(r) for r in peer_runs], dtype=float)
    counts = np.array([max(len(r), 1) for r in peer_runs], dtype=float)
    winner = rng.normal(np.mean(winner_runs), sd / np.sqrt(len(winner_runs)), size=draws)
    peers = rng.normal(means, sd / np.sqrt(counts), size=(draws, len(means)))
    pct = np.array([_percentile(w, p) for w, p in zip(winner, peers)])
    tail = 100 * (1 - level) / 2
    return {"seed_sd": sd, "architectures_with_seeds": noise["rows_with_seeds"],
            "ci": [float(np.percentile(pct, tail)), float(np.percentile(pct, 100 - tail))],
            "level": level, "p_top_quarter": float((pct >= 75).mean()), "draws": draws}


def plot_winner(results, path):
    """Stand-alone top-1 vs MFLOPs: random architectures and the searched winner -> PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    rand = results["random"]
    peers = "table rows" if results.get("mode") == "benchmark" else "random"
    win = results["winner"]
    for entry, colour in [(r, "tab:gray") for r in rand] + [(win, "tab:red")]:
        runs = entry.get("standalone_per_seed") or []
        if len(runs) > 1:                                    # the seed range as a bar
            ax.plot([entry["flops"]] * 2, [100 * min(runs), 100 * max(runs)], color=colour,
                    lw=1, alpha=0.6)
    counts = sorted({len(r.get("standalone_per_seed") or [1]) for r in rand})
    seeds = ("%d seeds" % counts[0] if counts[0] > 1 else "1 seed") if len(counts) == 1 \
        else "%d-%d seeds" % (counts[0], counts[-1])
    ax.scatter([r["flops"] for r in rand], [100 * r["standalone_top1"] for r in rand], s=30,
               color="tab:gray", label="%s under the limit (%d; %s each)"
               % (peers, len(rand), seeds))
    ax.axhline(100 * results["random_median_top1"], color="tab:gray", ls="--", lw=1,
               label="%s median %.1f %%" % (peers, 100 * results["random_median_top1"]))
    ax.scatter([win["flops"]], [100 * win["standalone_top1"]], marker="*", s=220,
               color="tab:red", edgecolor="k", label="searched winner %.1f %% (%d seeds; bars: "
               "seed range)" % (100 * win["standalone_top1"],
                                len(win.get("standalone_per_seed") or [1])), zorder=3)
    line = results.get("flops_line")
    if line:
        xs = [r["flops"] for r in rand] + [win["flops"]]
        grid = np.linspace(min(xs), max(xs), 50)
        ax.plot(grid, 100 * (line["intercept"] + line["slope_per_log_flops"] * np.log(grid)),
                color="tab:blue", lw=1, label="FLOPs line (%d %s); winner %+.2f points"
                % (line["rows"], line["over"], 100 * line["residual"]))
    ax.set_xlabel("MFLOPs (224 px, 1000 classes)")
    ax.set_ylabel("stand-alone top-1 (%)")
    title = "searched winner vs %s (%s)" % (peers, results["constraints"])
    if "percentile" in results:
        title += "\nwinner's percentile %.0f" % results["percentile"]
        noise = results.get("percentile_noise")
        if noise:
            title += " [%.0f, %.0f] (%.0f %%, seed noise)" % (noise["ci"][0], noise["ci"][1],
                                                              100 * noise["level"])
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
