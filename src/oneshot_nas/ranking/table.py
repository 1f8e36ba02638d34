"""A ground-truth table: K architectures of the search space trained stand-alone with one fixed
protocol, stored as a few kB of JSON that any supernet can be scored against in minutes.

Building is resumable: every finished run goes into a cache file (``<table>.runs.json``,
shared safely by worker processes) and the table is rewritten from the cache after every run,
so an interrupted build loses at most the runs in flight. Rows are sampled by
:func:`~oneshot_nas.ranking.sampling.sample_spread` (evenly spaced FLOPs quantiles over the
whole space, or under ``max_flops``); every row gets seed 0, and ``second_seed_rows`` rows,
spread over the FLOPs order, also seed 1 so that the table reports its own noise. The rows
under the search's FLOPs limit (the band, where a search winner is placed) are trained with
seeds ``0 .. band_seeds - 1``, so that their means are precise enough to rank a winner among.

A table may also hold a **FLOPs-matched set** (``matched_k`` rows, ``"set": "matched"``; the
spread rows are ``"set": "spread"``): architectures within ``matched_tolerance`` of one FLOPs
target just under the search's limit, chosen to differ in block types and widths, each trained
with seeds ``0 .. matched_seeds - 1``. FLOPs cannot order them; a supernet that ranks them does
so from what it has learnt about the blocks and widths themselves.

The statistics are recomputed from the runs whenever a table is loaded: a table whose stored
means or figures differ from its runs is refused.

Table JSON (format 1)::

    {"format": 1, "dataset": "fashion-mnist", "data_digest": "...",
     "units": "MFLOPs / M params at 224 px, 1000 classes",
     "protocol": {...StandaloneProtocol without seeds...},
     "sampling": {"k": 30, "seed": 0, "max_flops": null, "second_seed_rows": 10,
                  "band_seeds": 4, "matched_k": 12, "matched_flops": 291.0,
                  "matched_tolerance": 0.03, "matched_seeds": 3},
     "band": {"max_flops": 300.0},
     "complete": true,
     "architectures": [{"row": 0, "block_choices": "...", "channel_choices": "...",
                        "flops": 71.2, "params": 1.3, "in_band": true, "set": "spread",
                        "runs": [{"seed": 0, "top1": 0.87, "loss": 0.36, "curve": [...],
                                  "seconds": 62.0}],
                        "top1_mean": 0.87, "loss_mean": 0.36}, ...],
     "statistics": {"bootstrap": 2000, "bootstrap_seed": 0,
                    "all" / "band" / "matched": {seed-to-seed tau, spread against noise,
                        FLOPs-alone and params-alone tau, residual seed-to-seed tau}}}
"""
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..data import load_fashion_mnist
from ..files import atomic_write_json, nan_for_null, read_json
from ..plotting import pyplot, save_figure
from ..search.algorithms import Constraints
from ..search_space import Architecture
from .protocol import StandaloneCache, StandaloneProtocol, run_from_json, train_standalone
from ..profiling import FlopsCounter
from .sampling import sample_matched, sample_spread
from .stats import partial_tau_ci, rank_correlations, spread_against_noise, tau_null_sd

__all__ = ["TABLE_FORMAT", "TableSpec", "table_architectures", "second_seed_rows",
           "table_jobs", "build_table", "assemble_table", "table_statistics", "load_table",
           "validate_table", "rebuild_rows", "cache_path_for",
           "spec_from_table", "spec_to_argv", "seed_tau", "plot_table", "band_rows",
           "SETS"]

logger = logging.getLogger(__name__)

TABLE_FORMAT = 1
UNITS = "MFLOPs / M params at 224 px, 1000 classes"
SETS = ("spread", "matched")
BOOTSTRAP = 2000


@dataclass
class TableSpec:
    """What a table is: its architectures (K, sampling seed, FLOPs cap), its seeds (seed 1
    on ``second_seed_rows`` rows; seeds up to ``band_seeds - 1`` on every row in the band), the
    search's FLOPs band used for the within-band statistics, the FLOPs-matched set
    (``matched_k`` rows within ``matched_tolerance`` of ``matched_flops``, default 97 % of the
    band's limit, each with ``matched_seeds`` seeds) and the stand-alone protocol."""

    k: int = 30
    seed: int = 0
    max_flops: float = None
    second_seed_rows: int = 10
    band_max_flops: float = 300.0
    band_seeds: int = 4
    protocol: StandaloneProtocol = field(default_factory=StandaloneProtocol.fashion_mnist)
    matched_k: int = 0
    matched_flops: float = None
    matched_tolerance: float = 0.03
    matched_seeds: int = 3

    @property
    def matched_target(self):
        """The matched set's FLOPs target (97 % of the band's limit unless given)."""
        if self.matched_flops is not None:
            return float(self.matched_flops)
        return 0.97 * self.band_max_flops if self.band_max_flops else None

    @property
    def rows(self):
        """Rows of the table: the spread rows, then the matched ones."""
        return self.k + self.matched_k

    def sampling(self):
        """The ``sampling`` entry of the table JSON (matched fields only with a matched set)."""
        out = {"k": self.k, "seed": self.seed, "max_flops": self.max_flops,
               "second_seed_rows": self.second_seed_rows, "band_seeds": self.band_seeds}
        if self.matched_k:
            out.update(matched_k=self.matched_k, matched_flops=self.matched_target,
                       matched_tolerance=self.matched_tolerance,
                       matched_seeds=self.matched_seeds)
        return out

    def validate(self):
        if self.k < 3:
            raise ValueError("-k must be at least 3 to rank, got %d" % self.k)
        if not 0 <= self.second_seed_rows <= self.k:
            raise ValueError("--second-seed-rows must be in 0..%d, got %d"
                             % (self.k, self.second_seed_rows))
        if self.band_seeds < 1:
            raise ValueError("--band-seeds must be at least 1, got %d" % self.band_seeds)
        if self.matched_k < 0 or (self.matched_k and self.matched_k < 3):
            raise ValueError("--matched-archs must be 0 or at least 3, got %d" % self.matched_k)
        if self.matched_k:
            if self.matched_target is None:
                raise ValueError("--matched-archs needs --matched-flops (there is no band "
                                 "limit to default it to)")
            if not 0 < self.matched_tolerance < 0.5:
                raise ValueError("--matched-tolerance must be in (0, 0.5), got %g"
                                 % self.matched_tolerance)
            if self.matched_seeds < 2:
                raise ValueError("--matched-seeds must be at least 2 (the set reports its own "
                                 "seed-to-seed tau), got %d" % self.matched_seeds)
        return self


def table_architectures(spec, counter):
    """The rows of a table (deterministic in the spec): K architectures spread over FLOPs,
    sorted by FLOPs, then the matched set."""
    constraints = Constraints.build(max_flops=spec.max_flops)
    spread = sample_spread(spec.k, counter, constraints, seed=spec.seed)
    if not spec.matched_k:
        return spread
    return spread + sample_matched(spec.matched_k, counter, spec.matched_target,
                                   spec.matched_tolerance, seed=spec.seed, exclude=spread)


def second_seed_rows(k, n):
    """``n`` rows of ``k`` evenly spread over the FLOPs order (the rows with a second seed)."""
    return sorted({min(k - 1, int((i + 0.5) * k / n)) for i in range(n)}) if n else []


def band_rows(spec, flops):
    """The rows whose FLOPs (one value per row) are within the search's band (all rows without
    a band limit); matched rows included."""
    limit = spec.band_max_flops
    return [row for row, f in enumerate(flops) if limit is None or f <= limit]


def table_jobs(spec, in_band=()):
    """``(row, seed)`` pairs in training order: seed 0 of every spread row in bit-reversed
    order (0, 16, 8, 24, ... of 30 rows sorted by FLOPs, so that a partial table already spans
    the range), seed 0 of the matched rows, seed 1 of the second-seed rows, then seed by seed
    the matched rows up to ``matched_seeds - 1``, and the spread rows in the band ``in_band``
    up to seed ``band_seeds - 1`` (a partial build has the same seeds on every row of a set)."""
    order = sorted(range(spec.k), key=lambda i: (_bit_reverse(i, spec.k), i))
    matched = list(range(spec.k, spec.rows))
    jobs = [(row, 0) for row in order] + [(row, 0) for row in matched]
    jobs += [(row, 1) for row in second_seed_rows(spec.k, spec.second_seed_rows)]
    jobs += [(row, seed) for seed in range(1, spec.matched_seeds if matched else 1)
             for row in matched]
    have = set(jobs)
    jobs += [(row, seed) for seed in range(1, spec.band_seeds)
             for row in sorted(r for r in in_band if r < spec.k) if (row, seed) not in have]
    return jobs


def _bit_reverse(i, n):
    bits = max(1, int(math.ceil(math.log2(max(2, n)))))
    return int(format(i, "0%db" % bits)[::-1], 2)


def cache_path_for(table_path):
    """The runs cache beside a table: ``x.json`` -> ``x.runs.json``."""
    return os.path.splitext(table_path)[0] + ".runs.json"


def _data_digest(protocol):
    if protocol.dataset == "fashion-mnist":
        return load_fashion_mnist()["digest"]
    return None


def assemble_table(spec, archs, cache, counter, data_digest=None, rows=None,
                   bootstrap=BOOTSTRAP):
    """The table dict from the runs in ``cache`` (rows without a finished run are listed with
    no runs; ``complete`` says whether every job has finished)."""
    counter = FlopsCounter.wrap(counter)
    sizes = [counter.one(arch) for arch in archs]
    in_band = set(band_rows(spec, [flops for flops, _ in sizes]))
    wanted = {}
    for row, seed in table_jobs(spec, in_band):
        wanted.setdefault(row, []).append(seed)
    out_rows = []
    for row, arch in enumerate(archs):
        if rows is not None and row not in rows:
            continue
        flops, params = sizes[row]
        runs = []
        for seed in sorted(wanted.get(row, [])):
            record = cache.get(spec.protocol.key(arch, seed))
            if record is not None:
                runs.append(dict(record, seed=seed))
        entry = {"row": row, "block_choices": arch.block_string(),
                 "channel_choices": arch.channel_string(), "flops": flops, "params": params,
                 "in_band": row in in_band, "set": SETS[row >= spec.k],
                 "runs": runs}
        if runs:
            entry["top1_mean"] = float(np.mean([r["top1"] for r in runs]))
            entry["loss_mean"] = float(np.mean([r["loss"] for r in runs]))
        out_rows.append(entry)
    done = sum(len(r["runs"]) for r in out_rows)
    expected = sum(len(wanted.get(r["row"], [])) for r in out_rows)
    table = {
        "format": TABLE_FORMAT, "dataset": spec.protocol.dataset, "data_digest": data_digest,
        "units": UNITS, "protocol": spec.protocol.settings(),
        "sampling": spec.sampling(),
        "band": {"max_flops": spec.band_max_flops},
        "complete": done == expected, "runs_done": done, "runs_expected": expected,
        "architectures": out_rows,
    }
    table["statistics"] = table_statistics(out_rows, bootstrap=bootstrap, seed=spec.seed)
    return table


def _mean_pairs(rows, width):
    """Per row with ``2 * width`` seeds or more: the mean top-1 of its first ``width`` seeds and
    of its next ``width`` (width 1: seed 0 against seed 1)."""
    accs = [[run["top1"] for run in r["runs"]] for r in rows if len(r["runs"]) >= 2 * width]
    return np.array([(np.mean(a[:width]), np.mean(a[width:2 * width])) for a in accs]) \
        .reshape(-1, 2)


def _agreement(pairs, bootstrap, seed):
    """Kendall tau and Spearman rho between the two columns of ``pairs`` (None below 3 rows)."""
    if len(pairs) < 3:
        return None
    corr = rank_correlations(pairs[:, 0], pairs[:, 1], bootstrap, seed=seed)
    return {"kendall_tau": corr["kendall_tau"], "spearman_rho": corr["spearman_rho"],
            "null_sd": tau_null_sd(len(pairs))}


def _subsets(finished):
    """The named row subsets the statistics are given for."""
    subsets = [("all", finished), ("band", [r for r in finished if r["in_band"]])]
    matched = [r for r in finished if r.get("set") == "matched"]
    if matched:
        subsets.append(("matched", matched))
    return subsets


def _size_alone(subset, bootstrap, seed):
    """Kendall tau (with interval) of FLOPs and of params against the mean top-1: what ranking
    by size alone achieves on these rows (None below 3 rows)."""
    if len(subset) < 3:
        return {}
    means = np.array([np.mean([run["top1"] for run in r["runs"]]) for r in subset])
    return {"%s_alone" % name: rank_correlations(np.array([r[name] for r in subset]), means,
                                                 bootstrap, seed=seed)["kendall_tau"]
            for name in ("flops", "params")}


def _residual_seed_to_seed(subset, bootstrap, seed):
    """Seed-to-seed Kendall tau of the accuracy residuals after a least-squares line on log
    FLOPs (seed 0 against seed 1, rows with two seeds): the share of the ground truth FLOPs
    cannot see. None below 5 rows."""
    two = [r for r in subset if len(r["runs"]) >= 2]
    if len(two) < 5:
        return None
    first = np.array([r["runs"][0]["top1"] for r in two])
    second = np.array([r["runs"][1]["top1"] for r in two])
    log_flops = np.log(np.array([r["flops"] for r in two]))
    return dict(rows=len(two), kendall_tau=partial_tau_ci(first, second, log_flops, bootstrap,
                                                          seed=seed))


def table_statistics(rows, bootstrap=BOOTSTRAP, seed=0):
    """The table's own noise and its size baselines, for the whole table, within the band and
    within the matched set: seed-to-seed Kendall tau with bootstrap intervals, the same between
    two-seed means (seeds 0-1 against 2-3) where rows have four seeds, the spread of mean
    accuracies against the seed noise, FLOPs-alone and params-alone tau, and the residual
    seed-to-seed tau (what FLOPs cannot see)."""
    finished = [r for r in rows if r["runs"]]
    stats = {"bootstrap": int(bootstrap), "bootstrap_seed": int(seed),
             "rows_finished": len(finished)}
    for name, subset in _subsets(finished):
        pairs = _mean_pairs(subset, 1)
        entry = {"rows": len(subset), "rows_with_two_seeds": len(pairs)}
        seed_to_seed = _agreement(pairs, bootstrap, seed)
        if seed_to_seed:
            entry["seed_to_seed"] = seed_to_seed
        halves = _mean_pairs(subset, 2)
        two_seed_means = _agreement(halves, bootstrap, seed)
        if two_seed_means:
            entry["two_seed_means"] = dict(rows=len(halves), **two_seed_means)
        noise = spread_against_noise([[run["top1"] for run in r["runs"]] for r in subset]) \
            if len(subset) >= 2 else None
        if noise is not None:
            entry["spread_against_noise"] = noise
        entry.update(_size_alone(subset, bootstrap, seed))
        residual = _residual_seed_to_seed(subset, bootstrap, seed)
        if residual:
            entry["residual_seed_to_seed"] = residual
        stats[name] = entry
    return stats


def _write_table(path, table):
    atomic_write_json(path, table, indent=1)


def plot_table(table, path):
    """Stand-alone test top-1 against MFLOPs (seed range as a bar), and the curve points of
    every run (top-1 at each tested epoch) -> PNG."""
    plt = pyplot()
    rows = [r for r in table["architectures"] if r["runs"]]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for r in rows:
        accs = [100 * run["top1"] for run in r["runs"]]
        colour = "tab:orange" if r.get("set") == "matched" else \
            "tab:blue" if r["in_band"] else "tab:gray"
        ax.scatter([r["flops"]], [np.mean(accs)], s=30, color=colour, edgecolor="k", lw=0.4,
                   zorder=3)
        if len(accs) > 1:
            ax.plot([r["flops"]] * 2, [min(accs), max(accs)], color=colour, lw=1.5)
        for run in r["runs"]:
            curve = run.get("curve") or []
            ax2.plot([c["epoch"] for c in curve], [100 * c["top1"] for c in curve],
                     color=plt.cm.viridis(min(1.0, r["flops"] / max(x["flops"] for x in rows))),
                     lw=0.8, marker="o", ms=2)
    band = table["band"].get("max_flops")
    if band:
        ax.axvline(band, color="tab:blue", ls="--", lw=0.8,
                   label="search band <= %g MFLOPs" % band)
        if any(r.get("set") == "matched" for r in rows):
            ax.scatter([], [], color="tab:orange", edgecolor="k", lw=0.4, label="matched set")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("MFLOPs (224 px, 1000 classes)")
    ax.set_ylabel("stand-alone test top-1 (%; bar: seed range)")
    s2s = table["statistics"].get("all", {}).get("seed_to_seed")
    noise = table["statistics"].get("all", {}).get("spread_against_noise")
    title = "%s table: %d of %d runs" % (table["dataset"], table["runs_done"],
                                         table["runs_expected"])
    if s2s:
        title += "\nseed-to-seed tau %.2f [%.2f, %.2f]" % (
            s2s["kendall_tau"]["value"], *s2s["kendall_tau"]["ci"])
    if noise and _known(noise["ratio"]):
        title += ", spread / seed sd %.1f" % noise["ratio"]
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax2.set_xlabel("epoch (cosine schedule of the whole run)")
    ax2.set_ylabel("test top-1 (%)")
    ax2.set_title("tested epochs of every run (colour: MFLOPs)", fontsize=9)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def build_table(spec, output, cache_file=None, workers=1, only=None, rows=None, trainer=None,
                counter=None, archs=None, train=True):
    """Train every missing run of the table and write it; returns the table dict.

    Parameters
    ----------
    spec : TableSpec
    output : str
        The table JSON; rewritten after every finished run.
    cache_file : str, optional
        Runs cache (default ``<output>.runs.json``).
    workers : int
        Runs trained at once, one worker process a run with ``cores / workers`` OpenMP threads;
        a worker that finishes takes the next missing run in the table's order. 1 trains in
        this process.
    only : collection of (row, seed), optional
        Train only these runs and write no table (what a worker process is given).
    rows : set of int, optional
        Only these rows (a rebuild of chosen rows).
    trainer, counter : callable, optional
        Stand-ins for tests.
    archs : list of Architecture, optional
        The rows (default: those of an existing ``output``, else sampled by the spec).
    train : bool
        False: only (re)write the table from the runs already in the cache.
    """
    spec.validate()
    cache_file = cache_file or cache_path_for(output)
    counter = FlopsCounter.wrap(counter) if counter is not None else \
        FlopsCounter.for_model(spec.protocol)
    digest = _data_digest(spec.protocol) if trainer is None else None
    old = _check_existing(output, spec, digest)
    stored = None
    if old is not None and len(old["architectures"]) == spec.rows:
        # a resumed build trains what the file lists, even if the sampler has changed since
        stored = [Architecture.parse(r["block_choices"], r["channel_choices"])
                  for r in old["architectures"]]
    archs = archs or stored or table_architectures(spec, counter)
    every_job = table_jobs(spec, band_rows(spec, [counter.one(a)[0] for a in archs]))
    if old is not None:
        _refuse_fewer_runs(old, output, set(every_job), rows)
    jobs = [(r, s) for r, s in every_job if rows is None or r in rows]
    unknown = sorted(set(only or ()) - set(jobs))
    if unknown:
        raise ValueError("run row %d seed %d is not one of this table's runs" % unknown[0])
    cache = StandaloneCache(cache_file)
    if not train:
        pass
    elif workers > 1 and only is None:
        seen = [None]

        def rewrite_when_grown():        # the workers only add runs; this process writes
            cache.refresh()
            done = sum(cache.get(spec.protocol.key(archs[r], s)) is not None for r, s in jobs)
            if done != seen[0]:
                seen[0] = done
                _write_table(output, assemble_table(spec, archs, cache, counter, digest, rows))
                logger.info("table %s: %d of %d runs finished", output, done, len(jobs))
        todo = [(r, s) for r, s in jobs if cache.get(spec.protocol.key(archs[r], s)) is None]
        logger.info("table %s: %d runs, %d finished, %d to train in %d worker processes",
                    output, len(jobs), len(jobs) - len(todo), len(todo), workers)
        _run_workers(spec, output, cache_file, workers, todo, rows, on_done=rewrite_when_grown)
        cache.refresh()
    else:
        mine = [job for job in jobs if only is None or job in only]
        todo = [job for job in mine if cache.get(spec.protocol.key(archs[job[0]], job[1])) is None]
        logger.info("table %s: %d runs, %d finished, %d to train here", output, len(jobs),
                    len(jobs) - sum(cache.refresh().get(spec.protocol.key(archs[r], s)) is None
                                    for r, s in jobs), len(todo))
        tic = time.perf_counter()
        for n, (row, seed) in enumerate(todo, 1):
            arch = archs[row]
            flops = counter.one(arch)[0]
            logger.info("[%d/%d] row %d seed %d: %.1f MFLOPs, %s / %s", n, len(todo), row, seed,
                        flops, arch.block_string(), arch.channel_string())
            result = train_standalone(arch, spec.protocol, cache, trainer, seeds=[seed])
            elapsed = time.perf_counter() - tic
            logger.info("[%d/%d] row %d seed %d: test top-1 %.4f, loss %.4f; %.0f s so far, "
                        "about %.0f s to go", n, len(todo), row, seed, result["top1"],
                        result["loss"], elapsed, elapsed / n * (len(todo) - n))
            if only is None:
                _write_table(output, assemble_table(spec, archs, cache.refresh(), counter,
                                                    digest, rows))
    table = assemble_table(spec, archs, cache.refresh(), counter, digest, rows)
    if only is None:
        _write_table(output, table)
        table["plot"] = plot_table(table, os.path.splitext(output)[0] + ".png")
        logger.info("wrote %s (%d of %d runs) and %s", output, table["runs_done"],
                    table["runs_expected"], table["plot"])
    return table


def _refuse_fewer_runs(old, output, jobs, rows):
    """A rewrite of ``output`` (holding the table ``old``) with fewer seeds would silently drop
    finished runs from it."""
    dropped = sorted((r["row"], run["seed"]) for r in old["architectures"] for run in r["runs"]
                     if (r["row"], run["seed"]) not in jobs and (rows is None or r["row"] in rows))
    if dropped:
        s = old["sampling"]
        raise ValueError("%s has %d run(s) these seed settings would drop (row %d seed %d first); "
                         "it was built with --second-seed-rows %s --band-seeds %s: pass those or "
                         "choose another --output" % (output, len(dropped), dropped[0][0],
                                                      dropped[0][1], s["second_seed_rows"],
                                                      s.get("band_seeds", 1)))


def _check_existing(output, spec, digest):
    """Refuse to overwrite a table built with another protocol or sampling; returns the table
    already in ``output`` (None when there is none or it is unreadable)."""
    if not os.path.isfile(output):
        return None
    try:
        old = load_table(output, recompute=False)
    except ValueError:
        return None
    rows_fields = ("k", "seed", "max_flops", "matched_k", "matched_flops", "matched_tolerance")
    new_sampling = spec.sampling()
    if old["protocol"] != spec.protocol.settings() or \
            any(old["sampling"].get(f) != new_sampling.get(f) for f in rows_fields):
        raise ValueError("%s was built with another protocol or sampling; choose another "
                         "--output (or delete it and its runs cache)" % output)
    if digest and old.get("data_digest") and old["data_digest"] != digest:
        raise ValueError("%s was built on other data (digest %s, here %s)"
                         % (output, old["data_digest"], digest))
    return old


WORKER_POLL_SECONDS = 1.0      # how often a multi-worker build looks for finished runs


def _run_workers(spec, output, cache_file, workers, todo, rows, on_done=None):
    """Train the runs ``todo`` ((row, seed) pairs, in the table's order) in worker processes,
    one process a run and at most ``workers`` at once: whenever one finishes, the next run
    starts, so every core stays busy until the last run (a fixed split of the runs between
    the workers, as this used to do, left one worker alone with an hour of runs at the end
    of a build). ``on_done`` is called after every finished run (the table is rewritten).
    A failed run stops the build: the running ones finish, then RuntimeError."""
    threads = max(1, (os.cpu_count() or 2) // workers)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_CPU_WORKER_NTHREADS="1")
    base = [sys.executable, "-m", "oneshot_nas.cli.build_table", "--output", output,
            "--cache-file", cache_file] + spec_to_argv(spec)
    if rows is not None:
        base += ["--rows", ",".join(str(r) for r in sorted(rows))]
    logger.info("%d worker processes at a time, %d OpenMP thread(s) each", workers, threads)
    queue, running, failed = list(todo), [], []
    while queue or running:
        while queue and not failed and len(running) < workers:
            row, seed = queue.pop(0)
            running.append(((row, seed), subprocess.Popen(
                base + ["--job", "%d/%d" % (row, seed)], env=env)))
        time.sleep(WORKER_POLL_SECONDS)
        for entry in [e for e in running if e[1].poll() is not None]:
            running.remove(entry)
            (row, seed), proc = entry
            if proc.wait():
                failed.append("row %d seed %d (exit code %d)" % (row, seed, proc.returncode))
            elif on_done is not None:
                on_done()
        if failed and not running:
            break
    if failed:
        raise RuntimeError("table run(s) failed: %s; rerun the command to resume"
                           % ", ".join(failed))


def spec_to_argv(spec):
    """The ``build_table`` flags that reproduce ``spec``."""
    p = spec.protocol
    argv = ["-k", str(spec.k), "--seed", str(spec.seed), "--second-seed-rows",
            str(spec.second_seed_rows), "--band-max-flops", str(spec.band_max_flops),
            "--band-seeds", str(spec.band_seeds),
            "--dataset", p.dataset, "--train-subset", str(p.train_subset),
            "--epochs", str(p.epochs), "--lr", str(p.lr), "--batch-size", str(p.batch_size),
            "--warmup-epochs", str(p.warmup_epochs), "--wd", str(p.wd),
            "--optimizer", p.optimizer, "--val-interval", str(p.val_interval),
            "--channels-layout", p.channels_layout]
    if spec.matched_k:
        argv += ["--matched-archs", str(spec.matched_k), "--matched-flops",
                 repr(spec.matched_target), "--matched-tolerance", repr(spec.matched_tolerance),
                 "--matched-seeds", str(spec.matched_seeds)]
    if p.input_size:
        argv += ["--input-size", str(p.input_size)]
    if spec.max_flops is not None:
        argv += ["--max-flops", str(spec.max_flops)]
    if not p.augment:
        argv.append("--no-augment")
    if not p.use_se:
        argv.append("--no-se")
    if not p.last_conv_after_pooling:
        argv.append("--no-last-conv-after-pooling")
    if p.label_smoothing:
        argv.append("--label-smoothing")
    if p.max_batches_per_epoch:
        argv += ["--max-batches-per-epoch", str(p.max_batches_per_epoch)]
    return argv


_REQUIRED = {"format": int, "dataset": str, "units": str, "protocol": dict, "sampling": dict,
             "band": dict, "complete": bool, "architectures": list, "statistics": dict}
_ROW_REQUIRED = {"row": int, "block_choices": str, "channel_choices": str,
                 "flops": (int, float), "params": (int, float), "in_band": bool, "runs": list}
_RUN_REQUIRED = {"seed": int, "top1": (int, float), "loss": (int, float, type(None)),
                 "curve": list, "seconds": (int, float)}     # loss null: NaN, not measured


def validate_table(table, name="table", recompute=True):
    """Check a table dict against format 1; ValueError with one line naming the field.
    ``recompute``: also recompute every row's means and the statistics from the runs and
    refuse a table whose stored figures differ."""
    if not isinstance(table, dict):
        raise ValueError("%s is not a ground-truth table (a JSON object)" % name)
    for key, kind in _REQUIRED.items():
        if not isinstance(table.get(key), kind):
            raise ValueError("%s is not a ground-truth table: field %r missing or not %s"
                             % (name, key, getattr(kind, "__name__", kind)))
    if table["format"] != TABLE_FORMAT:
        raise ValueError("%s has table format %r; this version reads format %d"
                         % (name, table["format"], TABLE_FORMAT))
    StandaloneProtocol.from_dict(table["protocol"])
    for i, row in enumerate(table["architectures"]):
        for key, kind in _ROW_REQUIRED.items():
            if not isinstance(row.get(key), kind):
                raise ValueError("%s: architecture %d has no valid %r" % (name, i, key))
        Architecture.parse(row["block_choices"], row["channel_choices"])
        for run in row["runs"]:
            for key, kind in _RUN_REQUIRED.items():
                if not isinstance(run.get(key), kind):
                    raise ValueError("%s: architecture %d has a run without a valid %r"
                                     % (name, i, key))
            if not 0.0 <= run["top1"] <= 1.0:
                raise ValueError("%s: architecture %d has top-1 %r outside 0..1"
                                 % (name, i, run["top1"]))
        if row.get("set", SETS[0]) not in SETS:
            raise ValueError("%s: architecture %d has set %r; one of %s"
                             % (name, i, row["set"], ", ".join(SETS)))
    if recompute:
        _check_recomputed(table, name)
    return table


def _check_recomputed(table, name):
    """Refuse a table whose stored row means or statistics differ from its runs (a hand edit,
    or figures computed by other code): every figure is recomputed here."""
    for i, row in enumerate(table["architectures"]):
        for key, field_name in (("top1_mean", "top1"), ("loss_mean", "loss")):
            if not row["runs"]:
                if key in row:
                    raise ValueError("%s: architecture %d has a %s but no runs" % (name, i, key))
                continue
            mean = float(np.mean([nan_for_null(run[field_name]) for run in row["runs"]]))
            stored = nan_for_null(row[key]) if key in row else "nothing"
            if not isinstance(stored, (int, float)) or not _close(stored, mean):
                raise ValueError("%s: architecture %d stores %s %r, its runs give %r; the "
                                 "table was edited or is damaged" % (name, i, key, stored, mean))
    stats = table["statistics"]
    if "bootstrap" not in stats:
        raise ValueError("%s has statistics without their bootstrap settings (an older "
                         "build): rewrite it with build_table --status" % name)
    fresh = table_statistics(table["architectures"], bootstrap=stats["bootstrap"],
                             seed=stats["bootstrap_seed"])
    where = _first_difference(stats, fresh)
    if where is not None:
        raise ValueError("%s: stored statistics%s differ from those its runs give; the table "
                         "was edited or built by other code (rewrite it with build_table "
                         "--status)" % (name, where))


def _known(value):
    """A stored figure that was computable (NaN in memory, null once written)."""
    return isinstance(value, (int, float)) and not math.isnan(value)


def _close(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _first_difference(stored, fresh, path=""):
    """The path of the first figure that differs between two statistics dicts (None: same)."""
    if isinstance(fresh, dict):
        if not isinstance(stored, dict) or set(stored) != set(fresh):
            return path or "[...]"
        for key in fresh:
            where = _first_difference(stored[key], fresh[key], "%s[%r]" % (path, key))
            if where is not None:
                return where
        return None
    if isinstance(fresh, (list, tuple)):
        if not isinstance(stored, (list, tuple)) or len(stored) != len(fresh):
            return path
        for n, (a, b) in enumerate(zip(stored, fresh)):
            where = _first_difference(a, b, "%s[%d]" % (path, n))
            if where is not None:
                return where
        return None
    if isinstance(fresh, bool) or not isinstance(fresh, (int, float)):
        return None if stored == fresh else path
    if stored is None and isinstance(fresh, float) and math.isnan(fresh):
        return None             # a figure that cannot be computed is written as null
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return path
    return None if _close(float(stored), float(fresh)) else path


def load_table(path, recompute=True):
    """Read and check a table file; ValueError (one line) when missing or malformed, or (with
    ``recompute``) when its stored figures differ from its runs."""
    if not path or not os.path.isfile(path):
        raise ValueError("ground-truth table %s does not exist (build one with python -m "
                         "oneshot_nas.cli.build_table)" % path)
    table = validate_table(read_json(path, "ground-truth table"), path, recompute)
    for row in table["architectures"]:           # the figures written as null are NaN again
        row["runs"] = [run_from_json(run) for run in row["runs"]]
        if "loss_mean" in row:
            row["loss_mean"] = nan_for_null(row["loss_mean"])
    return table


def spec_from_table(table):
    """The :class:`TableSpec` a stored table was built with."""
    s = table["sampling"]
    return TableSpec(k=int(s["k"]), seed=int(s["seed"]), max_flops=s.get("max_flops"),
                     second_seed_rows=int(s["second_seed_rows"]),
                     band_seeds=int(s.get("band_seeds", 1)),
                     band_max_flops=table["band"].get("max_flops"),
                     protocol=StandaloneProtocol.from_dict(dict(table["protocol"], seeds=[0])),
                     matched_k=int(s.get("matched_k", 0)), matched_flops=s.get("matched_flops"),
                     matched_tolerance=float(s.get("matched_tolerance", 0.03)),
                     matched_seeds=int(s.get("matched_seeds", 3)))


def rebuild_rows(table_path, rows, output, trainer=None, counter=None):
    """Train chosen rows of a stored table again (fresh cache beside ``output``) and compare.

    Returns
    -------
    dict
        ``table`` (the rebuilt rows) and ``comparison``: per row and seed the stored and the
        new top-1 and their difference, with the stored table's seed standard deviation.
    """
    stored = load_table(table_path)
    spec = spec_from_table(stored)
    rows = set(int(r) for r in rows)
    bad = sorted(r for r in rows if not 0 <= r < spec.rows)
    if bad:
        raise ValueError("--rebuild-rows %s: the table has rows 0..%d" % (bad[0], spec.rows - 1))
    if os.path.abspath(output) == os.path.abspath(table_path):
        raise ValueError("--output must differ from the table being audited (%s)" % table_path)
    archs = [Architecture.parse(r["block_choices"], r["channel_choices"])
             for r in sorted(stored["architectures"], key=lambda r: r["row"])]
    table = build_table(spec, output, trainer=trainer, counter=counter, rows=rows, archs=archs)
    by_row = {r["row"]: r for r in stored["architectures"]}
    seed_sd = stored["statistics"].get("all", {}).get("spread_against_noise", {}).get("seed_sd")
    comparison = []
    for new in table["architectures"]:
        old = by_row[new["row"]]
        if (old["block_choices"], old["channel_choices"]) != (new["block_choices"],
                                                              new["channel_choices"]):
            raise ValueError("row %d of %s is another architecture than the one rebuilt: the "
                             "table was sampled with another lookup table" % (new["row"],
                                                                              table_path))
        old_runs = {r["seed"]: r for r in old["runs"]}
        for run in new["runs"]:
            if run["seed"] in old_runs:
                comparison.append({"row": new["row"], "seed": run["seed"],
                                   "stored_top1": old_runs[run["seed"]]["top1"],
                                   "new_top1": run["top1"],
                                   "difference": run["top1"] - old_runs[run["seed"]]["top1"]})
    return {"table": table, "comparison": comparison, "seed_sd": seed_sd}


def seed_tau(table, band=False, means=False):
    """Seed-to-seed Kendall tau of a table (the ceiling), or None with < 3 two-seed rows;
    ``means``: the tau between two-seed means (seeds 0-1 against 2-3), None with < 3 rows with
    four seeds."""
    entry = table["statistics"].get("band" if band else "all", {})
    return entry.get("two_seed_means" if means else "seed_to_seed", {}).get("kendall_tau")

