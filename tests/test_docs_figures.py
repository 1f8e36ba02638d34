"""The figures quoted in README.md and docs/ranking_results.md against the committed files.

Each check names a doc, the exact text as it stands there (whitespace runs, line breaks
included, count as one space), one or more JSON files with a path into each, and a formatter
that turns the JSON values into that text. The test asserts that the doc holds the text and
that the formatter gives it. Files are repository paths; ``git:<commit>:<path>`` reads a
file as it was at a commit (the docs quote two earlier versions that way); those checks are
skipped where the checkout has no git history. The docs report no figure whose files were not
kept.

Pure text and JSON reading: nothing here imports mxnet or the package.
"""
import functools
import json
import math
import os
import re
import statistics
import subprocess

import pytest

from oneshot_nas.training.samplers import FLOPS_BINS  # None in a record: the --flops-bins default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

README = "README.md"
RESULTS = "docs/ranking_results.md"
RANKING = "docs/ranking.md"

TABLE = "docs/ranking/fashion_mnist_table.json"
TABLE_40 = "git:15cfc5d:docs/ranking/fashion_mnist_table.json"  # the first, 40-run table
AUDIT = "docs/ranking/audit_rows_0_2.json"
SUPERNET_A = "docs/ranking/supernet_A_tau_vs_steps.json"
SUPERNET_C = "docs/ranking/supernet_C_tau_vs_steps.json"
SUPERNET_A_40 = "git:70673e8:docs/ranking/supernet_A_tau_vs_steps.json"
SUPERNET_C_40 = "git:70673e8:docs/ranking/supernet_C_tau_vs_steps.json"
ONE_RATE = "docs/ranking/supernet_C_one_rate_per_step_rank_check.json"
SEARCH_TOP1 = "docs/ranking/search_C_genetic_vs_random.json"
SEARCH_LOSS = "docs/ranking/search_C_loss_genetic_vs_random.json"
TABLE_48 = "docs/ranking/fashion_mnist_48px_table.json"
SUPERNET_C_48 = "docs/ranking/supernet_C_48px_final.json"
SEARCH_48 = "docs/ranking/search_48px/%s_s%d.json"
SEARCH_48_PAIRS = "docs/ranking/search_48px/genetic_vs_random.json"
RANK_C_48 = "docs/ranking/supernet_C_48px_rank_check.json"
RANK_C_48_LAST3 = "docs/ranking/supernet_C_48px_last3_rank_check.json"
WINNER_48 = "docs/ranking/search_48px/winner_%s_s%d/winner_check.json"
RANK_48 = {"C (the default)": RANK_C_48,
           "C, last three checkpoints averaged": RANK_C_48_LAST3,
           "FLOPs bins (paths uniform over 7 FLOPs bins in 90-620 MFLOPs)":
               "docs/ranking/supernet_bins_48px_rank_check.json",
           "strict fairness (4 paths a step)": "docs/ranking/supernet_fair_48px_rank_check.json"}
TRAIN_48 = {"bins": "docs/ranking/supernet_bins_48px_final.json",
            "fair": "docs/ranking/supernet_fair_48px_final.json"}
KERNEL_PAIR = "docs/ranking/input_size_study.runs.json"
KERNEL_PAIR_16 = "docs/ranking/kernel_pair_48px_16ep.runs.json"
DIGITS_RANK = "docs/supernet_digits/rank_check_k12.json"
DEMO = "logs/demo_summary.json"


# ---------------------------------------------------------------------------------------------
# reading docs, JSON files and paths into them

def _normalise(text):
    return " ".join(text.split())


@functools.lru_cache(maxsize=None)
def _doc(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return _normalise(f.read())


@functools.lru_cache(maxsize=None)
def _git_show(commit, path):
    """The text of ``path`` at ``commit``, or None when git or that commit is not available."""
    try:
        done = subprocess.run(["git", "-C", ROOT, "show", "%s:%s" % (commit, path)],
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8")


@functools.lru_cache(maxsize=None)
def _load_text(spec):
    if spec.startswith("git:"):
        _, commit, path = spec.split(":", 2)
        text = _git_show(commit, path)
        if text is None:
            pytest.skip("%s at commit %s is not in this checkout's git history" % (path, commit))
        return text
    with open(os.path.join(ROOT, spec), encoding="utf-8") as f:
        return f.read()


def _load(spec):
    # parsed anew on every call, so that no formatter can change another check's data
    return json.loads(_load_text(spec))


_SEGMENT = re.compile(r"([^.\[\]]*)((?:\[[^\]]*\])*)")


def _split_path(path):
    """``a.b[4].c`` -> ['a', 'b', 4, 'c']; ``[]`` stays '[]' (every element)."""
    steps = []
    if not path:
        return steps
    for part in path.split("."):
        m = _SEGMENT.fullmatch(part)
        if m is None or (not m.group(1) and not m.group(2)):
            raise ValueError("cannot read path %r" % path)
        if m.group(1):
            steps.append(m.group(1))
        for index in re.findall(r"\[([^\]]*)\]", m.group(2)):
            steps.append("[]" if index == "" else int(index))
    return steps


def _resolve(data, path):
    """The value at ``path`` (a list of values where ``[]`` appears); KeyError / IndexError /
    TypeError when it does not exist."""
    values = [data]
    for step in _split_path(path):
        if step == "[]":
            nxt = []
            for v in values:
                if not isinstance(v, list):
                    raise TypeError("[] applied to %s" % type(v).__name__)
                nxt.extend(v)
            values = nxt
        elif isinstance(step, int):
            values = [v[step] if isinstance(v, list) else _not_a(v, "list") for v in values]
        else:
            values = [v[step] if isinstance(v, dict) else _not_a(v, "dict") for v in values]
    return values if "[]" in _split_path(path) else values[0]


def _not_a(value, kind):
    raise TypeError("expected a %s, found %s" % (kind, type(value).__name__))


# ---------------------------------------------------------------------------------------------
# formatting helpers

def ci(v, digits=2):
    """``{value, ci}`` as the docs write it: ``0.52 [0.30, 0.68]``."""
    f = "%%.%df" % digits
    return ("%s [%s, %s]" % (f, f, f)) % (v["value"], v["ci"][0], v["ci"][1])


def ci3(v):
    return ci(v, 3)


def pct(x, digits=2):
    """A fraction as percent digits: 0.9805 -> '98.05'."""
    return "%.*f" % (digits, 100 * x)


def thousands(n):
    return "{:,}".format(n)


def band_rows(table):
    return [a for a in table["architectures"] if a["in_band"]]


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def run_of(arch, seed):
    (run,) = [r for r in arch["runs"] if r["seed"] == seed]
    return run


def kendall_tau_b(x, y):
    """Kendall's tau-b (ties in either sequence), as ranking/stats.py defines it."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / math.sqrt(
        (concordant + discordant + ties_x) * (concordant + discordant + ties_y))


def first_40_runs(table):
    """The runs of the first, 40-run table: seed 0 on every row, seed 1 on rows 1, 4, ..., 28
    (as ranking_results.md section 1 says); the rest are the band's 37 further runs."""
    first, further = [], []
    for a in table["architectures"]:
        for r in a["runs"]:
            (first if r["seed"] == 0 or (r["seed"] == 1 and a["row"] % 3 == 1)
             else further).append(r)
    return first, further


def seed_range(rows):
    """'0-3' when every row has the same consecutive seeds."""
    (seeds,) = {tuple(sorted(r["seed"] for r in a["runs"])) for a in rows}
    assert list(seeds) == list(range(seeds[0], seeds[-1] + 1))
    return "%d-%d" % (seeds[0], seeds[-1])


def flops_range(rows):
    return "%.0f-%.0f" % (min(a["flops"] for a in rows), max(a["flops"] for a in rows))


def mean_range(rows, digits=2):
    means = [100 * a["top1_mean"] for a in rows]
    return "%.*f-%.*f" % (digits, min(means), digits, max(means))


def epoch_top1(run, epoch):
    (point,) = [p for p in run["curve"] if p["epoch"] == epoch]
    return point["top1"]


def epoch_4_vs_8(table):
    seed0 = [run_of(a, 0) for a in table["architectures"]]
    tau = kendall_tau_b([epoch_top1(r, 4) for r in seed0], [epoch_top1(r, 8) for r in seed0])
    runs = [r for a in table["architectures"] for r in a["runs"]]
    gains = [100 * (epoch_top1(r, 8) - epoch_top1(r, 4)) for r in runs]
    higher = sum(g > 0 for g in gains)
    return ("Kendall tau %.2f between the epoch-4 and epoch-8 accuracies of the %d seed-0 runs, "
            "and all %d runs are higher at epoch 8 than at epoch 4, by %.1f points or more"
            % (tau, len(seed0), higher if higher == len(runs) else -1,
               math.floor(10 * min(gains)) / 10))


def audit_line(row, stored_table, audit, table_40_stats):
    stored = run_of(stored_table["architectures"][row], 0)["top1"]
    (rebuilt_arch,) = [a for a in audit["architectures"] if a["row"] == row]
    rebuilt = run_of(rebuilt_arch, 0)["top1"]
    diff = 100 * (rebuilt - stored)
    seed_sd = 100 * table_40_stats["all"]["spread_against_noise"]["seed_sd"]
    return ("row %d seed 0: stored %s %%, rebuilt %s %%, difference %+.2f points (%.1f seed sd)"
            % (row, pct(stored), pct(rebuilt), diff, abs(diff) / seed_sd))


def tau_row(p):
    """A row of the supernet-A table: steps, tau, rho, band tau."""
    return "| %s | %s | %s | %s |" % (thousands(p["steps"]), ci(p["kendall_tau"]),
                                      ci(p["spearman_rho"]), ci(p["band"]["kendall_tau"]))


def loss_row(p, seed):
    g, r = p["genetic_best"], p["random_best"]
    lg, lr = -math.log(g), -math.log(r)
    bold = "**%.4f**" if lg <= lr else "%.4f"
    return ("| %d | %d | " + bold + " (%.4f) | %.4f (%.4f) |") % (
        seed, p["candidates"], lg, g, lr, r)


def top1_row(p, seed):
    """A row of round 1: seed, candidates, genetic and random best top-1 (the better in bold)."""
    g, r = p["genetic_best"], p["random_best"]
    gs, rs = pct(g) + " %", pct(r) + " %"
    if g >= r:
        gs = "**%s**" % gs
    else:
        rs = "**%s**" % rs
    return "| %d | %d | %s | %s |" % (seed, p["candidates"], gs, rs)


def beyond_row(label, b, field, digits=3, sides=("all", "band")):
    def get(side):
        v = b[side]
        for key in field.split("."):
            v = v[key]
        return ci(v, digits)
    return "| %s | %s |" % (label, " | ".join(get(side) for side in sides))


def stats_row(label, s, fmt, sides=("all", "band")):
    return "| %s | %s |" % (label, " | ".join(fmt(s[side]) for side in sides))


THREE_SIDES = ("all", "band", "matched")


def winner_row(genetic, random_, mode, seed):
    """A row of the 48-px winners' table; the better of the seed's two winners in bold."""
    w = genetic if mode == "genetic" else random_
    g, r = genetic["winner"]["standalone_top1"], random_["winner"]["standalone_top1"]
    top1 = "%s %%" % pct(w["winner"]["standalone_top1"])
    if (g >= r) == (mode == "genetic"):  # ties go to the genetic winner
        top1 = "**%s**" % top1
    flops = "%.1f" % w["winner"]["flops"]
    if not w["matched_window"]["inside"]:
        flops += " (outside the window)"
    lo, hi = w["percentile_noise"]["ci"]
    return "| %s, seed %d | %s (%s) | %s | %.0f [%.0f, %.0f] | %+.2f |" % (
        mode, seed, top1, " / ".join(pct(x) for x in w["winner"]["standalone_per_seed"]), flops,
        w["percentile"], lo, hi, 100 * w["flops_line"]["residual"])


def genetic_ge_random(*pairs):
    """'in k of n seeds' for winner_check files given as (genetic, random) per seed."""
    wins = sum(g["winner"]["standalone_top1"] >= r["winner"]["standalone_top1"] for g, r in pairs)
    return "at least as good as the random one stand-alone in %d of %d seeds" % (wins, len(pairs))


def recipe_row(label, r):
    """A row of the 48-px recipes table: tau, the partial tau over three row sets, the
    predictor's difference from FLOPs alone."""
    b = r["beyond_flops"]
    return "| %s | %s | %s | %s | %s | %s |" % (
        label, ci3(r["kendall_tau"]), ci3(b["all"]["partial_tau"]), ci3(b["band"]["partial_tau"]),
        ci3(b["matched"]["partial_tau"]), ci3(b["all"]["predictor"]["minus_flops"]))


def image_count_cell(point):
    """'0.22 +- 0.13 / 0.392 +- 0.054 / 0.005 +- 0.050' (one draw: no sd)."""
    parts = [(point["reliability"], 2), (point["all"]["kendall_tau"], 3),
             (point["all"]["partial_tau"], 3)]
    if point["draws"] == 1:
        return " / ".join("%.*f" % (d, v["mean"]) for v, d in parts)
    return " / ".join("%.*f +- %.*f" % (d, v["mean"], d, v["sd"]) for v, d in parts)


def image_count_row(bins, fair, i):
    a, b = bins["curve"][i], fair["curve"][i]
    assert a["images"] == b["images"]
    label = thousands(a["images"]) + (" (all)" if a["images"] == bins["images"] else "")
    return "| %s | %s | %s |" % (label, image_count_cell(a), image_count_cell(b))


# ---------------------------------------------------------------------------------------------
# the checks: (id, doc, text, file(s), path(s), formatter)

def kernel_pair(runs, size, epochs=8):
    """The kernel pair at ``size`` px trained ``epochs`` epochs, from a runs cache (keys are JSON
    of arch, protocol and seed; layer 9 tells the two nets apart): the per-seed top-1 in points
    of each net ("3x3", "7x7", seeds in order), their means, the pooled seed sd, the difference
    7x7 - 3x3 and that difference over its standard error."""
    got = {"3x3": {}, "7x7": {}}
    for key, run in runs.items():
        k = json.loads(key)
        if k["protocol"]["input_size"] == size and k["protocol"]["epochs"] == epochs:
            got[{0: "3x3", 2: "7x7"}[k["arch"]["blocks"][9]]][k["seed"]] = 100 * run["top1"]
    a, b = ([v[s] for s in sorted(v)] for v in got.values())
    assert len(a) == len(b) == 3, "the pair at %d px has %d / %d seeds" % (size, len(a), len(b))
    sd = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    diff = statistics.mean(b) - statistics.mean(a)
    return {"3x3": a, "7x7": b, "mean_3x3": statistics.mean(a), "mean_7x7": statistics.mean(b),
            "sd": sd, "diff": diff, "z": diff / (sd * math.sqrt(2 / len(a)))}


def kernel_pair_gap(runs, size, epochs=8):
    """'+0.22 points, 0.7 standard errors'"""
    p = kernel_pair(runs, size, epochs)
    return "%+.2f points, %.1f standard errors" % (p["diff"], p["z"])


CHECKS = [
    # ---- README.md: Measured here on digits (logs/demo_summary.json) ----
    ("readme-digits-seed", README, "`make demo-record`, seed 0,", DEMO, "seed",
     lambda v: "`make demo-record`, seed %d," % v),
    ("readme-digits-supernet-seconds", README, "supernet (60 epochs, 208 s)", DEMO,
     "stage_seconds.supernet", lambda v: "supernet (60 epochs, %.0f s)" % v),
    ("readme-digits-search", README,
     "(55 candidates each, FLOPs <= 300 M, supernet scores on held-out images) | "
     "60.00 % / 55.83 % |",
     DEMO, "search_comparison[0]",
     lambda v: "(%d candidates each, FLOPs <= 300 M, supernet scores on held-out images) | "
               "%s %% / %s %% |"
               % (v["candidates"], pct(v["genetic_best"]), pct(v["random_best"]))),
    ("readme-digits-search-top1", README, "| 60.00 % / 55.83 % |", DEMO, "",
     lambda v: "| %s %% / %s %% |" % (pct(v["genetic_best_top1"]), pct(v["random_best_top1"]))),
    ("readme-digits-flops-params", README,
     "| searched subnet | 244.85 M FLOPs / 3.331 M params at 224 px, 1000 classes |",
     DEMO, "flops_224",
     lambda v: "| searched subnet | %.2f M FLOPs / %.3f M params at 224 px, 1000 classes |"
               % (v["flops_m"], v["params_m"])),
    ("readme-digits-fp32-top1", README,
     "| trained from scratch: fp32 top-1 (last epoch, validation split) | 98.05 % |",
     DEMO, "fp32_top1",
     lambda v: "| trained from scratch: fp32 top-1 (last epoch, validation split) | %s %% |"
               % pct(v)),
    ("readme-digits-int8-top1", README,
     "| fp32 / int8 top-1 of the exported graph (MKLDNN, naive calibration) | 98.05 % / 98.05 % |",
     DEMO, "int8",
     lambda v: "| fp32 / int8 top-1 of the exported graph (MKLDNN, naive calibration) | "
               "%s %% / %s %% |" % (pct(v["fp32"]["top1"]), pct(v["int8"]["top1"]))),
    ("readme-digits-throughput", README,
     "| fp32 / fused fp32 / int8 throughput at batch 32 (32 px) | 2440 / 2605 / 4376 img/s |",
     DEMO, "int8",
     lambda v: "| fp32 / fused fp32 / int8 throughput at batch 32 (32 px) | "
               "%.0f / %.0f / %.0f img/s |" % (v["fp32"]["throughput"],
                                               v["fp32-fused"]["throughput"],
                                               v["int8"]["throughput"])),
    ("readme-digits-micronet", README,
     "| MicroNet score float32 / float16 / int8 | 0.922 / 0.564 / 0.251 |",
     DEMO, "micronet.micronet.scores",
     lambda v: "| MicroNet score float32 / float16 / int8 | %.3f / %.3f / %.3f |"
               % (v["float32"]["score"], v["float16"]["score"], v["int8"]["score"])),

    # ---- README.md: the ground-truth table's description ----
    ("readme-table-description", README,
     "30 architectures spread over the search space's FLOPs, each trained stand-alone with one "
     "fixed protocol (19 of them with two or more seeds, the 14 rows <= 300 MFLOPs with four,",
     TABLE, "",
     lambda t: "%d architectures spread over the search space's FLOPs, each trained stand-alone "
               "with one fixed protocol (%d of them with two or more seeds, the %d rows <= %.0f "
               "MFLOPs with %s," % (
                   len(t["architectures"]), t["statistics"]["all"]["rows_with_two_seeds"],
                   len(band_rows(t)), t["band"]["max_flops"],
                   {4: "four"}.get(t["sampling"]["band_seeds"], "?"))),

    # ---- README.md: Ranking evidence on Fashion-MNIST ----
    ("readme-fm-table-rows-protocol", README,
     "30 architectures (94-619 MFLOPs), 8 epochs on 10,000 images", TABLE, "",
     lambda t: "%d architectures (%s MFLOPs), %d epochs on %s images" % (
         len(t["architectures"]), flops_range(t["architectures"]), t["protocol"]["epochs"],
         thousands(t["protocol"]["train_subset"]))),
    ("readme-fm-table-runs-budget", README,
     "77 runs: seeds 0-3 on the 14 rows <= 300 MFLOPs, 2 seeds on 5 more; 5.35 h of one-thread "
     "training", TABLE, "",
     lambda t: "%d runs: seeds %s on the %d rows <= %.0f MFLOPs, 2 seeds on %d more; %.2f h of "
               "one-thread training" % (
                   t["runs_done"], seed_range(band_rows(t)), len(band_rows(t)),
                   t["band"]["max_flops"],
                   sum(len(a["runs"]) == 2 for a in t["architectures"] if not a["in_band"]),
                   sum(r["seconds"] for a in t["architectures"] for r in a["runs"]) / 3600)),
    ("readme-fm-table-noise", README,
     "seed-to-seed Kendall tau 0.59 [0.29, 0.81] (19 rows); spread of means / seed sd 1.7 "
     "(band: 1.2; two-seed means of the band agree at tau 0.58 [0.30, 0.83])",
     TABLE, "statistics",
     lambda s: "seed-to-seed Kendall tau %s (%d rows); spread of means / seed sd %.1f (band: %.1f; "
               "two-seed means of the band agree at tau %s)" % (
                   ci(s["all"]["seed_to_seed"]["kendall_tau"]), s["all"]["rows_with_two_seeds"],
                   s["all"]["spread_against_noise"]["ratio"],
                   s["band"]["spread_against_noise"]["ratio"],
                   ci(s["band"]["two_seed_means"]["kendall_tau"]))),
    ("readme-fm-supernet-C-steps", README, "8,590 steps) vs the table, K = 30",
     SUPERNET_C, "points[4]",
     lambda p: "%s steps) vs the table, K = %d" % (thousands(p["steps"]), p["k"])),
    ("readme-fm-supernet-C-tau-rho", README,
     "Kendall tau 0.52 [0.30, 0.68], Spearman rho 0.70 [0.42, 0.86]", SUPERNET_C, "points[4]",
     lambda p: "Kendall tau %s, Spearman rho %s" % (ci(p["kendall_tau"]), ci(p["spearman_rho"]))),
    ("readme-fm-supernet-C-40-run-table", README,
     "0.505 [0.287, 0.679] against the first 40-run table", SUPERNET_C_40, "points[-1]",
     lambda p: "%s against the first 40-run table" % ci3(p["kendall_tau"])),
    ("readme-fm-flops-alone", README,
     "Kendall tau 0.65 [0.48, 0.78] (`fashion_mnist_table.json` → `statistics.all.flops_alone`)",
     TABLE, "statistics.all.flops_alone",
     lambda v: "Kendall tau %s (`fashion_mnist_table.json` → `statistics.all.flops_alone`)"
               % ci(v)),
    ("readme-fm-band", README,
     "within the search's band (<= 300 MFLOPs, K = 14) | Kendall tau 0.52 [0.21, 0.77]",
     SUPERNET_C, "points[4].band",
     lambda b: "within the search's band (<= %.0f MFLOPs, K = %d) | Kendall tau %s"
               % (b["max_flops"], b["k"], ci(b["kendall_tau"]))),
    ("readme-fm-recipes", README, "tau 0.45 / 0.52", (SUPERNET_A, SUPERNET_C),
     ("points[3].kendall_tau", "points[4].kendall_tau"),
     lambda a, c: "tau %.2f / %.2f" % (a["value"], c["value"])),
    ("readme-fm-search-loss", README,
     "10 generations, 109-117 candidates) | genetic >= random in 3 of 3", SEARCH_LOSS, "",
     lambda s: "10 generations, %d-%d candidates) | genetic >= random in %d of %d" % (
         min(p["candidates"] for p in s["pairs"]), max(p["candidates"] for p in s["pairs"]),
         s["genetic_wins"], len(s["pairs"]))),
    ("readme-fm-search-top1", README, "top-1 fitness with 5 generations: 2 of 3", SEARCH_TOP1, "",
     lambda s: "top-1 fitness with 5 generations: %d of %d" % (s["genetic_wins"], len(s["pairs"]))),
    ("readme-fm-winner-band", README,
     "percentile among the 14 table architectures <= 300 MFLOPs (4 seeds each)", TABLE, "",
     lambda t: "percentile among the %d table architectures <= %.0f MFLOPs (%s seeds each)" % (
         len(band_rows(t)), t["band"]["max_flops"],
         len(set(len(a["runs"]) for a in band_rows(t))) == 1 and len(band_rows(t)[0]["runs"]))),
    ("readme-fm-band-spread", README,
     "the band's architectures are 0.47 points apart against a seed sd of 0.39",
     TABLE, "statistics.band.spread_against_noise",
     lambda v: "the band's architectures are %s points apart against a seed sd of %s"
               % (pct(v["spread_sd"]), pct(v["seed_sd"]))),

    # ---- docs/ranking_results.md, section 1: the table ----
    ("results-table-rows", RESULTS, "30 rows of 94-619 MFLOPs (`architectures[].flops`), 77 runs "
     "(`runs_done`)", TABLE, "",
     lambda t: "%d rows of %s MFLOPs (`architectures[].flops`), %d runs (`runs_done`)"
               % (len(t["architectures"]), flops_range(t["architectures"]), t["runs_done"])),
    ("results-table-band-seeds", RESULTS, "seeds 0-3 on the 14 rows of the band (`sampling`)",
     TABLE, "",
     lambda t: "seeds 0-%d on the %d rows of the band (`sampling`)"
               % (t["sampling"]["band_seeds"] - 1, len(band_rows(t)))),
    ("results-digits-rank-check", RESULTS,
     "Kendall tau -0.09 [-0.43, 0.31], K = 12: `docs/supernet_digits/rank_check_k12.json` → "
     "`kendall_tau`", DIGITS_RANK, "",
     lambda r: "Kendall tau %s, K = %d: `docs/supernet_digits/rank_check_k12.json` → "
               "`kendall_tau`" % (ci(r["kendall_tau"]), len(r["architectures"]))),
    ("results-budget", RESULTS,
     "The first 40 runs (seed 0 on all rows, seed 1 on ten) add up to 12,389 s of one-thread "
     "training, the band's 37 further runs to 6,856 s (137-228 s each); 5.35 hours in all",
     TABLE, "",
     lambda t: (lambda first, further: (
         "The first %d runs (seed 0 on all rows, seed 1 on ten) add up to %s s of one-thread "
         "training, the band's %d further runs to %s s (%.0f-%.0f s each); %.2f hours in all" % (
             len(first), thousands(round(sum(r["seconds"] for r in first))), len(further),
             thousands(round(sum(r["seconds"] for r in further))),
             min(r["seconds"] for r in further), max(r["seconds"] for r in further),
             sum(r["seconds"] for r in first + further) / 3600)))(*first_40_runs(t))),
    ("results-noise-rows", RESULTS, "| rows | 30 (94-619 MFLOPs) | 14 |", TABLE, "",
     lambda t: "| rows | %d (%s MFLOPs) | %d |" % (
         t["statistics"]["all"]["rows"], flops_range(t["architectures"]),
         t["statistics"]["band"]["rows"])),
    ("results-noise-runs", RESULTS,
     "| runs | 77: 19 rows with two or more seeds | 56: every row with seeds 0-3 |", TABLE, "",
     lambda t: "| runs | %d: %d rows with two or more seeds | %d: every row with seeds %s |" % (
         t["runs_done"], sum(len(a["runs"]) >= 2 for a in t["architectures"]),
         sum(len(a["runs"]) for a in band_rows(t)), seed_range(band_rows(t)))),
    ("results-noise-top1-range", RESULTS,
     "| mean test top-1 | 84.67-87.31 % (range 2.64 points) | 84.67-86.46 % (range 1.79 points) |",
     TABLE, "",
     lambda t: "| mean test top-1 | %s %% (range %s points) | %s %% (range %s points) |" % (
         mean_range(t["architectures"]),
         pct(t["statistics"]["all"]["spread_against_noise"]["range"]),
         mean_range(band_rows(t)), pct(t["statistics"]["band"]["spread_against_noise"]["range"]))),
    ("results-noise-spread-sd", RESULTS,
     "| spread of the row means (sd) | 0.65 points | 0.47 points |", TABLE, "statistics",
     lambda s: stats_row("spread of the row means (sd)", s,
                         lambda x: pct(x["spread_against_noise"]["spread_sd"]) + " points")),
    ("results-noise-seed-sd", RESULTS,
     "| seed standard deviation (pooled, one run) | 0.38 points | 0.39 points |", TABLE,
     "statistics",
     lambda s: stats_row("seed standard deviation (pooled, one run)", s,
                         lambda x: pct(x["spread_against_noise"]["seed_sd"]) + " points")),
    ("results-noise-ratio", RESULTS, "| spread / seed sd | **1.7** | **1.2** |", TABLE,
     "statistics",
     lambda s: stats_row("spread / seed sd", s,
                         lambda x: "**%.1f**" % x["spread_against_noise"]["ratio"])),
    ("results-noise-seed-to-seed", RESULTS,
     "| **0.59 [0.29, 0.81]** (19 rows, null sd 0.17) | "
     "0.45 [0.04, 0.75] (14 rows, null sd 0.20) |",
     TABLE, "statistics",
     lambda s: "| **%s** (%d rows, null sd %.2f) | %s (%d rows, null sd %.2f) |" % (
         ci(s["all"]["seed_to_seed"]["kendall_tau"]), s["all"]["rows_with_two_seeds"],
         s["all"]["seed_to_seed"]["null_sd"], ci(s["band"]["seed_to_seed"]["kendall_tau"]),
         s["band"]["rows_with_two_seeds"], s["band"]["seed_to_seed"]["null_sd"])),
    ("results-noise-two-seed-means", RESULTS,
     "| | **0.58 [0.30, 0.83]** (14 rows, null sd 0.20) |", TABLE, "statistics.band.two_seed_means",
     lambda v: "| | **%s** (%d rows, null sd %.2f) |" % (ci(v["kendall_tau"]), v["rows"],
                                                      v["null_sd"])),
    ("results-40-run-spread", RESULTS,
     "range 2.56 / 2.09 points (whole table / band), spread 0.62 / 0.55, seed sd 0.36 / 0.44",
     TABLE_40, "statistics",
     lambda s: "range %s / %s points (whole table / band), spread %s / %s, seed sd %s / %s" % tuple(
         pct(s[side]["spread_against_noise"][key])
         for key in ("range", "spread_sd", "seed_sd") for side in ("all", "band"))),
    ("results-40-run-seed-to-seed", RESULTS,
     "seed-to-seed tau 0.58 [-0.06, 1.00] over 10 rows / 0.20 [-1.00, 1.00] over 5 rows",
     TABLE_40, "statistics",
     lambda s: "seed-to-seed tau %s over %d rows / %s over %d rows" % (
         ci(s["all"]["seed_to_seed"]["kendall_tau"]), s["all"]["rows_with_two_seeds"],
         ci(s["band"]["seed_to_seed"]["kendall_tau"]), s["band"]["rows_with_two_seeds"])),
    ("results-40-run-row-12", RESULTS, "its best row, row 12, had 86.84 % with one seed",
     TABLE_40, "architectures[12]",
     lambda a: "its best row, row %d, had %s %% with %s seed" % (
         a["row"], pct(a["top1_mean"]), {1: "one"}.get(len(a["runs"]), "?"))),
    ("results-row-12-now", RESULTS, "and has 86.46 % over four", TABLE, "architectures[12]",
     lambda a: "and has %s %% over %s"
               % (pct(a["top1_mean"]), {4: "four"}.get(len(a["runs"]), "?"))),
    ("results-ends-of-range", RESULTS,
     "the 3 smallest rows, 94-109 MFLOPs, at 84.7-85.3 %; the 8 largest, 479-619 MFLOPs, at "
     "86.1-87.3 %", TABLE, "architectures",
     lambda a: (lambda rows: "the 3 smallest rows, %s MFLOPs, at %s %%; the 8 largest, %s MFLOPs, "
                             "at %s %%" % (flops_range(rows[:3]), mean_range(rows[:3], 1),
                                           flops_range(rows[-8:]), mean_range(rows[-8:], 1)))(
         sorted(a, key=lambda x: x["flops"]))),
    ("results-epoch-4-vs-8", RESULTS,
     "Kendall tau 0.48 between the epoch-4 and epoch-8 accuracies of the 30 seed-0 runs, and all "
     "77 runs are higher at epoch 8 than at epoch 4, by 2.4 points or more", TABLE, "",
     epoch_4_vs_8),
    ("results-audit-row-0", RESULTS,
     "row 0 seed 0: stored 85.57 %, rebuilt 85.21 %, difference -0.36 points (1.0 seed sd)",
     (TABLE, AUDIT, TABLE_40), ("", "", "statistics"),
     lambda t, a, s: audit_line(0, t, a, s)),
    ("results-audit-row-2", RESULTS,
     "row 2 seed 0: stored 84.75 %, rebuilt 85.06 %, difference +0.31 points (0.9 seed sd)",
     (TABLE, AUDIT, TABLE_40), ("", "", "statistics"),
     lambda t, a, s: audit_line(2, t, a, s)),
    ("results-audit-seconds", RESULTS, "521 s of one-thread training", AUDIT, "architectures",
     lambda v: "%.0f s of one-thread training" % sum(r["seconds"] for a in v for r in a["runs"])),
    ("results-audit-seed-sd", RESULTS, "(0.36 points then, 0.38 in the current table)",
     (TABLE_40, TABLE),
     ("statistics.all.spread_against_noise", "statistics.all.spread_against_noise"),
     lambda old, new: "(%s points then, %s in the current table)"
                      % (pct(old["seed_sd"]), pct(new["seed_sd"]))),

    # ---- section 2: supernets against the table ----
    ("results-A-859", RESULTS,
     "| 859 | 0.32 [0.06, 0.54] | 0.47 [0.08, 0.73] | 0.49 [0.20, 0.76] |", SUPERNET_A,
     "points[0]", tau_row),
    ("results-A-2577", RESULTS,
     "| 2,577 | 0.29 [-0.04, 0.55] | 0.45 [-0.00, 0.74] | 0.63 [0.33, 0.90] |", SUPERNET_A,
     "points[1]", tau_row),
    ("results-A-4295", RESULTS,
     "| 4,295 | 0.43 [0.14, 0.66] | 0.62 [0.26, 0.83] | 0.60 [0.24, 0.90] |", SUPERNET_A,
     "points[2]", tau_row),
    ("results-A-final", RESULTS,
     "| 5,154 (final) | **0.45 [0.14, 0.69]** | **0.64 [0.28, 0.86]** | **0.67 [0.37, 0.93]** |",
     SUPERNET_A, "points[3]",
     lambda p: "| %s (final) | **%s** | **%s** | **%s** |" % (
         thousands(p["steps"]), ci(p["kendall_tau"]), ci(p["spearman_rho"]),
         ci(p["band"]["kendall_tau"]))),
    ("results-A-flops-baseline", RESULTS, "| ranking by FLOPs alone | 0.65 [0.48, 0.78] | | |",
     SUPERNET_A, "points[3].flops_baseline",
     lambda v: "| ranking by FLOPs alone | %s | | |" % ci(v)),
    ("results-A-params-baseline", RESULTS, "| ranking by params alone | 0.65 [0.49, 0.77] | | |",
     TABLE, "statistics.all.params_alone",
     lambda v: "| ranking by params alone | %s | | |" % ci(v)),
    ("results-A-ceiling", RESULTS,
     "| the table's seed-to-seed agreement | 0.59 [0.29, 0.81] | | 0.45 (seed 0 against 1), 0.58 "
     "(two-seed means) |", (SUPERNET_A, TABLE), ("points[3]", "statistics.band.two_seed_means"),
     lambda p, two: "| the table's seed-to-seed agreement | %s | | %.2f (seed 0 against 1), %.2f "
                    "(two-seed means) |" % (ci(p["ceiling"]), p["band"]["ceiling"]["value"],
                                            two["kendall_tau"]["value"])),
    ("results-recipe-A-steps", RESULTS, "| A: 6 epochs, channels uniform from step 1 | 5,154 |",
     SUPERNET_A, "points[3].steps",
     lambda v: "| A: 6 epochs, channels uniform from step 1 | %s |" % thousands(v)),
    ("results-recipe-A-tau-rho", RESULTS, "| 0.45 [0.14, 0.69] | 0.64 |", SUPERNET_A, "points[3]",
     lambda p: "| %s | %.2f |" % (ci(p["kendall_tau"]), p["spearman_rho"]["value"])),
    ("results-recipe-C-steps", RESULTS,
     "**C: 10 epochs, 2 full-width epochs, then uniform channels** | 8,590 |", SUPERNET_C,
     "points[4].steps",
     lambda v: "**C: 10 epochs, 2 full-width epochs, then uniform channels** | %s |"
               % thousands(v)),
    ("results-recipe-C-tau-rho", RESULTS, "| **0.52 [0.30, 0.68]** | **0.70** |", SUPERNET_C,
     "points[4]",
     lambda p: "| **%s** | **%.2f** |" % (ci(p["kendall_tau"]), p["spearman_rho"]["value"])),
    ("results-recipe-C-band", RESULTS, "| 0.52 [0.21, 0.77] |", SUPERNET_C,
     "points[4].band.kendall_tau", lambda v: "| %s |" % ci(v)),
    ("results-recipes-flops-alone", RESULTS,
     "| ranking by FLOPs alone | | 0.65 [0.48, 0.78] | | 0.60 [0.29, 0.90] |", TABLE,
     "statistics",
     lambda s: "| ranking by FLOPs alone | | %s | | %s |"
               % (ci(s["all"]["flops_alone"]), ci(s["band"]["flops_alone"]))),
    ("results-recipes-params-alone", RESULTS,
     "| ranking by params alone | | 0.65 [0.49, 0.77] | | 0.56 [0.28, 0.85] |", TABLE,
     "statistics",
     lambda s: "| ranking by params alone | | %s | | %s |"
               % (ci(s["all"]["params_alone"]), ci(s["band"]["params_alone"]))),
    ("results-40-run-supernets-tau", RESULTS,
     "tau 0.43 (A) and 0.50 (C: 0.505 [0.287, 0.679],",
     (SUPERNET_A_40, SUPERNET_C_40),
     ("points[-1].kendall_tau", "points[-1].kendall_tau"),
     lambda a, c: "tau %.2f (A) and %.2f (C: %s," % (a["value"], c["value"], ci3(c))),
    ("results-40-run-supernets-band", RESULTS,
     "band tau 0.56 / 0.49, and FLOPs alone 0.60",
     (SUPERNET_A_40, SUPERNET_C_40), ("points[-1]", "points[-1]"),
     lambda a, c: "band tau %.2f / %.2f, and FLOPs alone %.2f" % (
         a["band"]["kendall_tau"]["value"], c["band"]["kendall_tau"]["value"],
         c["flops_baseline"]["value"] if c["flops_baseline"] == a["flops_baseline"] else -1)),
    ("results-C-steps-row", RESULTS,
     "| steps | 1,718 (end of the full-width phase) | 3,436 | 5,154 | 6,872 | 8,590 (final) |",
     SUPERNET_C, "points",
     lambda ps: "| steps | %s (end of the full-width phase) | %s | %s | %s | %s (final) |"
                % tuple(thousands(p["steps"]) for p in ps)),
    ("results-C-tau-row", RESULTS,
     "| Kendall tau [95 %] | 0.55 [0.33, 0.73] | 0.48 [0.23, 0.67] | 0.53 [0.31, 0.73] | "
     "0.54 [0.34, 0.71] | 0.52 [0.30, 0.68] |", SUPERNET_C, "points",
     lambda ps: "| Kendall tau [95 %%] | %s |" % " | ".join(ci(p["kendall_tau"]) for p in ps)),
    ("results-C-first-point", RESULTS, "the sliced subnets already rank the table at 0.55",
     SUPERNET_C, "points[0].kendall_tau.value",
     lambda v: "the sliced subnets already rank the table at %.2f" % v),
    ("results-C-more-steps", RESULTS, "Training the channel choices for 6,872 more steps",
     SUPERNET_C, "points",
     lambda ps: "Training the channel choices for %s more steps"
                % thousands(ps[-1]["steps"] - ps[0]["steps"])),
    ("results-one-rate-tau", RESULTS,
     "Kendall tau **0.320 [0.024, 0.581]** over K = 30 (`kendall_tau`; rho 0.449, `spearman_rho`), "
     "within the band 0.560 [0.229, 0.848] (`band.kendall_tau`)", ONE_RATE, "",
     lambda r: "Kendall tau **%s** over K = %d (`kendall_tau`; rho %.3f, `spearman_rho`), within "
               "the band %s (`band.kendall_tau`)" % (
                   ci3(r["kendall_tau"]), r["k"], r["spearman_rho"]["value"],
                   ci3(r["band"]["kendall_tau"]))),
    ("results-one-rate-baselines", RESULTS,
     "FLOPs alone 0.651 [0.478, 0.779], params alone 0.646 (`baselines`)", ONE_RATE, "baselines",
     lambda b: "FLOPs alone %s, params alone %.3f (`baselines`)"
               % (ci3(b["flops"]), b["params"]["value"])),
    ("results-one-rate-reliability", RESULTS,
     "reliability 0.84 for the loss against 0.73 for top-1 (`reliability`)", ONE_RATE,
     "reliability",
     lambda r: "reliability %.2f for the loss against %.2f for top-1 (`reliability`)"
               % (r["loss"], r["acc"])),
    ("results-one-rate-seconds", RESULTS,
     "Scoring the 30 rows took 349 s (`architectures[].supernet_seconds`)", ONE_RATE,
     "architectures",
     lambda a: "Scoring the %d rows took %.0f s (`architectures[].supernet_seconds`)"
               % (len(a), sum(x["supernet_seconds"] for x in a))),
    ("results-one-rate-vs-C", RESULTS, "The intervals overlap recipe C's 0.52 [0.30, 0.68]",
     SUPERNET_C, "points[4].kendall_tau",
     lambda v: "The intervals overlap recipe C's %s" % ci(v)),

    # ---- section 3: search ----
    *(("results-round-1-seed-%d" % i, RESULTS, row, SEARCH_TOP1, "pairs[%d]" % i,
       lambda p, i=i: top1_row(p, i))
      for i, row in enumerate(["| 0 | 55 | **81.56 %** | 81.14 % |",
                               "| 1 | 57 | 81.42 % | **81.70 %** |",
                               "| 2 | 57 | **81.70 %** | 81.12 % |"])),
    ("results-round-1-wins", RESULTS, "`genetic_wins` (2); plot `search_C_genetic_vs_random.png`.",
     SEARCH_TOP1, "",
     lambda s: "`genetic_wins` (%d); plot `search_C_genetic_vs_random.png`." % s["genetic_wins"]),
    ("results-round-1-summary", RESULTS, "**Genetic >= random in 2 of 3 seeds.**", SEARCH_TOP1, "",
     lambda s: "**Genetic >= random in %d of %d seeds.**" % (s["genetic_wins"], len(s["pairs"]))),
    *(("results-round-2-seed-%d" % i, RESULTS, row, SEARCH_LOSS, "pairs[%d]" % i,
       lambda p, i=i: loss_row(p, i))
      for i, row in enumerate(["| 0 | 109 | **0.4853** (0.6155) | 0.4913 (0.6118) |",
                               "| 1 | 117 | **0.4791** (0.6193) | 0.4903 (0.6124) |",
                               "| 2 | 112 | **0.4782** (0.6199) | 0.4928 (0.6109) |"])),
    ("results-round-2-wins", RESULTS,
     "`genetic_wins` (3); plot `search_C_loss_genetic_vs_random.png`.",
     SEARCH_LOSS, "",
     lambda s: "`genetic_wins` (%d); plot `search_C_loss_genetic_vs_random.png`."
               % s["genetic_wins"]),
    ("results-round-2-margins", RESULTS,
     "**Genetic >= random in 3 of 3 seeds**, by 0.0059 / 0.0112 / 0.0145 in loss", SEARCH_LOSS, "",
     lambda s: "**Genetic >= random in %d of %d seeds**, by %s in loss" % (
         s["genetic_wins"], len(s["pairs"]),
         " / ".join("%.4f" % (math.log(p["genetic_best"]) - math.log(p["random_best"]))
                    for p in s["pairs"]))),

    # ---- section 4: the winners against the band ----
    ("results-band-median-best", RESULTS, "Band median 85.485 %, best 86.465 % (row 12)", TABLE, "",
     lambda t: (lambda rows: "Band median %s %%, best %s %% (row %d)" % (
         pct(median([a["top1_mean"] for a in rows]), 3),
         pct(max(a["top1_mean"] for a in rows), 3),
         max(rows, key=lambda a: a["top1_mean"])["row"]))(band_rows(t))),
    ("results-rows-4th-5th", RESULTS,
     "85.83 % for the rows ranked 4th and 5th (rows 9 and 7, `architectures[9|7].top1_mean`)",
     TABLE, "",
     # 4th and 5th of 15: the band's 3rd and 4th rows, with the winner (85.9 %, in a .png) above
     lambda t: (lambda rows: "%s %% for the rows ranked 4th and 5th (rows %d and %d, "
                             "`architectures[%d|%d].top1_mean`)" % (
         pct(rows[2]["top1_mean"]) if pct(rows[2]["top1_mean"]) == pct(rows[3]["top1_mean"])
         else "?", rows[2]["row"], rows[3]["row"], rows[2]["row"], rows[3]["row"]))(
         sorted(band_rows(t), key=lambda a: -a["top1_mean"]))),
    ("results-rows-12-9-then-now", RESULTS,
     "row 12: 86.84 % → 86.46 %; row 9: 86.13 % → 85.83 %",
     (TABLE_40, TABLE), ("architectures", "architectures"),
     lambda old, new: "; ".join("row %d: %s %% → %s %%" % (i, pct(old[i]["top1_mean"]),
                                                         pct(new[i]["top1_mean"]))
                                for i in (12, 9))),
    ("results-band-median-then-now", RESULTS, "the band's median fell from 85.73 % to 85.485 %",
     (TABLE_40, TABLE), ("", ""),
     lambda old, new: "the band's median fell from %s %% to %s %%" % (
         pct(median([a["top1_mean"] for a in band_rows(old)])),
         pct(median([a["top1_mean"] for a in band_rows(new)]), 3))),
    ("results-band-spread-vs-noise", RESULTS,
     "a spread of 0.47 points between the 4-seed means against a seed standard deviation of 0.39 "
     "points for one run, ratio 1.2", TABLE, "statistics.band.spread_against_noise",
     lambda v: "a spread of %s points between the 4-seed means against a seed standard deviation "
               "of %s points for one run, ratio %.1f"
               % (pct(v["spread_sd"]), pct(v["seed_sd"]), v["ratio"])),
    ("results-40-run-band-seed-to-seed", RESULTS, "seed-to-seed tau 0.20 over 5 rows, 15cfc5d",
     TABLE_40, "statistics.band",
     lambda b: "seed-to-seed tau %.2f over %d rows, 15cfc5d"
               % (b["seed_to_seed"]["kendall_tau"]["value"], b["rows_with_two_seeds"])),
    ("results-band-two-seed-means", RESULTS, "agree at Kendall tau 0.58 [0.30, 0.83] (K = 14,",
     TABLE, "statistics.band.two_seed_means",
     lambda v: "agree at Kendall tau %s (K = %d," % (ci(v["kendall_tau"]), v["rows"])),
    ("results-four-seed-mean-sd", RESULTS, "about 0.20 points (0.39 / 2)", TABLE,
     "statistics.band.spread_against_noise.seed_sd",
     lambda v: "about %s points (%s / 2)" % (pct(v / 2), pct(v))),

    # ---- section 5 ----
    ("results-summary-C", RESULTS,
     "ranks the 30 table architectures at Kendall tau 0.52 [0.30, 0.68]",
     SUPERNET_C, "points[4]",
     lambda p: "ranks the %d table architectures at Kendall tau %s"
               % (p["k"], ci(p["kendall_tau"]))),
    ("results-summary-C-40-run", RESULTS, "0.505 [0.287, 0.679] against the 40-run table",
     SUPERNET_C_40, "points[-1].kendall_tau", lambda v: "%s against the 40-run table" % ci3(v)),
    ("results-summary-flops-alone", RESULTS, "(0.65 [0.48, 0.78], `statistics.all.flops_alone`)",
     TABLE, "statistics.all.flops_alone",
     lambda v: "(%s, `statistics.all.flops_alone`)" % ci(v)),
    ("results-summary-one-rate", RESULTS, "change it gave 0.320 [0.024, 0.581]", ONE_RATE,
     "kendall_tau", lambda v: "change it gave %s" % ci3(v)),
    ("results-summary-search", RESULTS,
     "in 3 of 3 seeds (round 1, top-1 and 5 generations: 2 of 3,", (SEARCH_LOSS, SEARCH_TOP1),
     ("", ""),
     lambda loss, top1: "in %d of %d seeds (round 1, top-1 and 5 generations: %d of %d," % (
         loss["genetic_wins"], len(loss["pairs"]), top1["genetic_wins"], len(top1["pairs"]))),

    # ---- section 6: beyond FLOPs ----
    ("results-32px-rows", RANKING, "| rows | 30 | 14 |", TABLE, "statistics",
     lambda s: stats_row("rows", s, lambda x: "%d" % x["rows"])),
    ("results-32px-flops-alone", RANKING,
     "| FLOPs alone, Kendall tau against mean top-1 | 0.651 [0.478, 0.779] | "
     "0.604 [0.287, 0.897] |",
     TABLE, "statistics",
     lambda s: stats_row("FLOPs alone, Kendall tau against mean top-1", s,
                         lambda x: ci3(x["flops_alone"]))),
    ("results-32px-params-alone", RANKING,
     "| params alone | 0.646 [0.489, 0.773] | 0.560 [0.284, 0.854] |", TABLE, "statistics",
     lambda s: stats_row("params alone", s, lambda x: ci3(x["params_alone"]))),
    ("results-32px-seed-to-seed", RANKING,
     "| seed-to-seed tau | 0.594 [0.294, 0.809] (19 rows) | 0.451 [0.036, 0.750] (14 rows) |",
     TABLE, "statistics",
     lambda s: stats_row("seed-to-seed tau", s, lambda x: "%s (%d rows)" % (
         ci3(x["seed_to_seed"]["kendall_tau"]), x["rows_with_two_seeds"]))),
    ("results-32px-residual", RANKING,
     "| residual seed-to-seed tau (what FLOPs cannot see) | 0.322 [-0.092, 0.681] (19 rows) | "
     "0.209 [-0.341, 0.610] (14 rows) |", TABLE, "statistics",
     lambda s: stats_row("residual seed-to-seed tau (what FLOPs cannot see)", s,
                         lambda x: "%s (%d rows)" % (ci3(x["residual_seed_to_seed"]["kendall_tau"]),
                                                     x["residual_seed_to_seed"]["rows"]))),
    ("results-32px-flops-vs-seed", RANKING, "as well as a second seed does (0.65 against 0.59)",
     TABLE, "statistics.all",
     lambda a: "as well as a second seed does (%.2f against %.2f)"
               % (a["flops_alone"]["value"], a["seed_to_seed"]["kendall_tau"]["value"])),
    ("results-beyond-header", RANKING,
     "| recipe C (one rate per step) | whole table, K = 30 | band, K = 14 |", ONE_RATE,
     "beyond_flops",
     lambda b: "| recipe C (one rate per step) | whole table, K = %d | band, K = %d |"
               % (b["all"]["k"], b["band"]["k"])),
    ("results-beyond-supernet-tau", RANKING,
     "| supernet tau | 0.320 [0.024, 0.581] | 0.560 [0.229, 0.848] |", ONE_RATE, "beyond_flops",
     lambda b: beyond_row("supernet tau", b, "kendall_tau")),
    ("results-beyond-flops-alone", RANKING,
     "| FLOPs alone | 0.651 [0.478, 0.779] | 0.604 [0.287, 0.897] |", ONE_RATE, "beyond_flops",
     lambda b: beyond_row("FLOPs alone", b, "flops_alone")),
    ("results-beyond-minus-flops", RANKING,
     "| supernet - FLOPs (paired) | -0.331 [-0.567, -0.120] | -0.044 [-0.346, 0.231] |", ONE_RATE,
     "beyond_flops", lambda b: beyond_row("supernet - FLOPs (paired)", b, "minus_flops")),
    ("results-beyond-partial-tau", RANKING,
     "| partial tau given log FLOPs | -0.085 [-0.357, 0.222] | -0.033 [-0.531, 0.556] |", ONE_RATE,
     "beyond_flops", lambda b: beyond_row("partial tau given log FLOPs", b, "partial_tau")),
    ("results-beyond-predictor", RANKING,
     "| predictor [log FLOPs, score], leave-one-out | 0.614 [0.446, 0.739] | "
     "0.473 [0.220, 0.741] |",
     ONE_RATE, "beyond_flops",
     lambda b: beyond_row("predictor [log FLOPs, score], leave-one-out", b,
                          "predictor.kendall_tau")),
    ("results-beyond-predictor-minus-flops", RANKING,
     "| predictor - FLOPs alone (paired) | -0.037 [-0.096, 0.000] | -0.132 [-0.353, 0.049] |",
     ONE_RATE, "beyond_flops",
     lambda b: beyond_row("predictor - FLOPs alone (paired)", b, "predictor.minus_flops")),
    ("results-twins-count", RANKING,
     "Noise floor: 8 rows against their same-function twins (at 32 px",
     ONE_RATE, "twins",
     lambda t: "Noise floor: %d rows against their same-function twins (at %d px"
               % (len(t["pairs"]), t["input_size"])),
    ("results-twins-gap", RANKING,
     "give a mean gap of 0.0069 in held-out cross-entropy (up to 0.018, row 0), 0.23 of the "
     "scores' standard deviation over the table (0.030)", ONE_RATE, "twins",
     lambda t: (lambda widest: "give a mean gap of %.4f in held-out cross-entropy (up to %.3f, row "
                               "%d), %.2f of the scores' standard deviation over the table (%.3f)"
                % (t["mean_gap"], widest["gap"], widest["row"], t["gap_over_sd"], t["score_sd"]))(
         max(t["pairs"], key=lambda p: p["gap"]))),

    # ---- README.md: the 48-px rows of the ranking evidence ----
    ("readme-48px-table", README,
     "42 rows, the 30 above and a FLOPs-matched set of 12 within 3 % of 291 MFLOPs, seeds 0-2",
     TABLE_48, "",
     lambda t: "%d rows, the %d above and a FLOPs-matched set of %d within %.0f %% of %.0f MFLOPs, "
               "seeds 0-%d" % (len(t["architectures"]), t["sampling"]["k"],
                               t["sampling"]["matched_k"], 100 * t["sampling"]["matched_tolerance"],
                               t["sampling"]["matched_flops"], t["sampling"]["matched_seeds"] - 1)),
    ("readme-48px-matched-noise", README,
     "at equal FLOPs the means spread 0.23 points against a seed sd of 0.25; what FLOPs cannot "
     "see, residual seed-to-seed tau 0.15 [-0.18, 0.50] (22 rows)", TABLE_48, "statistics",
     lambda s: "at equal FLOPs the means spread %.2f points against a seed sd of %.2f; what FLOPs "
               "cannot see, residual seed-to-seed tau %s (%d rows)" % (
                   100 * s["matched"]["spread_against_noise"]["spread_sd"],
                   100 * s["matched"]["spread_against_noise"]["seed_sd"],
                   ci(s["all"]["residual_seed_to_seed"]["kendall_tau"]),
                   s["all"]["residual_seed_to_seed"]["rows"])),
    ("readme-48px-recipes", README,
     "against that table, K = 42 | partial tau given log FLOPs 0.02-0.09, no lower bound above 0",
     tuple(RANK_48.values()), ("beyond_flops.all",) * len(RANK_48),
     lambda *b: "against that table, K = %s | partial tau given log FLOPs %.2f-%.2f, %s" % (
         "/".join(sorted({"%d" % x["k"] for x in b})),
         min(x["partial_tau"]["value"] for x in b), max(x["partial_tau"]["value"] for x in b),
         "no lower bound above 0" if all(x["partial_tau"]["ci"][0] <= 0 for x in b)
         else "a lower bound above 0")),
    ("readme-48px-winners", README, "genetic >= random in 1 of 3 search seeds",
     tuple(WINNER_48 % (mode, seed) for seed in range(3) for mode in ("genetic", "random")),
     ("",) * 6,
     lambda *w: "genetic >= random in %d of 3 search seeds" % sum(
         w[2 * i]["winner"]["standalone_top1"] >= w[2 * i + 1]["winner"]["standalone_top1"]
         for i in range(3))),

    # ---- ranking.md: the 48-px results of record ----
    ("results-48px-rows", RANKING, "| rows | 42 | 26 | 12 |", TABLE_48, "statistics",
     lambda s: stats_row("rows", s, lambda x: "%d" % x["rows"], THREE_SIDES)),
    ("results-48px-flops-alone", RANKING,
     "| FLOPs alone, Kendall tau against mean top-1 | 0.553 [0.383, 0.700] | "
     "0.438 [0.181, 0.654] | -0.242 [-0.695, 0.228] |", TABLE_48, "statistics",
     lambda s: stats_row("FLOPs alone, Kendall tau against mean top-1", s,
                         lambda x: ci3(x["flops_alone"]), THREE_SIDES)),
    ("results-48px-params-alone", RANKING,
     "| params alone | 0.539 [0.382, 0.678] | 0.394 [0.151, 0.590] | -0.212 [-0.633, 0.288] |",
     TABLE_48, "statistics",
     lambda s: stats_row("params alone", s, lambda x: ci3(x["params_alone"]), THREE_SIDES)),
    ("results-48px-seed-to-seed", RANKING,
     "| seed-to-seed tau | 0.439 [0.140, 0.688] (22 rows) | 0.311 [-0.087, 0.709] (17 rows) | "
     "0.137 [-0.323, 0.649] (12 rows) |", TABLE_48, "statistics",
     lambda s: stats_row("seed-to-seed tau", s, lambda x: "%s (%d rows)" % (
         ci3(x["seed_to_seed"]["kendall_tau"]), x["rows_with_two_seeds"]), THREE_SIDES)),
    ("results-48px-residual", RANKING,
     "| residual seed-to-seed tau (what FLOPs cannot see) | 0.152 [-0.178, 0.498] (22 rows) | "
     "0.059 [-0.349, 0.528] (17 rows) | 0.000 [-0.492, 0.607] (12 rows) |", TABLE_48, "statistics",
     lambda s: stats_row("residual seed-to-seed tau (what FLOPs cannot see)", s,
                         lambda x: "%s (%d rows)" % (ci3(x["residual_seed_to_seed"]["kendall_tau"]),
                                                     x["residual_seed_to_seed"]["rows"]),
                         THREE_SIDES)),
    ("results-48px-spread", RANKING,
     "| spread of the row means / seed sd, points | 0.52 / 0.30 | 0.35 / 0.27 | 0.23 / 0.25 |",
     TABLE_48, "statistics",
     lambda s: stats_row("spread of the row means / seed sd, points", s,
                         lambda x: "%.2f / %.2f" % (100 * x["spread_against_noise"]["spread_sd"],
                                                   100 * x["spread_against_noise"]["seed_sd"]),
                         THREE_SIDES)),
    ("results-48px-matched-spread-text", RANKING,
     "(their means spread 0.23 points against a seed sd of 0.25)", TABLE_48,
     "statistics.matched.spread_against_noise",
     lambda x: "(their means spread %.2f points against a seed sd of %.2f)"
               % (100 * x["spread_sd"], 100 * x["seed_sd"])),
    ("results-48px-matched-intro", RANKING,
     "a FLOPs-matched set of 12 architectures within 3 % of 291 MFLOPs (seeds 0-2 each)",
     TABLE_48, "sampling",
     lambda s: "a FLOPs-matched set of %d architectures within %.0f %% of %.0f MFLOPs (seeds "
               "0-%d each)" % (s["matched_k"], 100 * s["matched_tolerance"], s["matched_flops"],
                               s["matched_seeds"] - 1)),
    ("results-48px-beyond-header", RANKING,
     "| recipe C, 48 px | whole table, K = 42 | band, K = 26 | matched set, K = 12 |", RANK_C_48,
     "beyond_flops",
     lambda b: "| recipe C, 48 px | whole table, K = %d | band, K = %d | matched set, K = %d |"
               % (b["all"]["k"], b["band"]["k"], b["matched"]["k"])),
] + [
    ("results-48px-beyond-%s" % field.replace(".", "-"), RANKING, row, RANK_C_48, "beyond_flops",
     lambda b, label=label, field=field: beyond_row(label, b, field, sides=THREE_SIDES))
    for label, field, row in (
        ("supernet tau", "kendall_tau",
         "| supernet tau | 0.506 [0.335, 0.647] | 0.444 [0.190, 0.646] | 0.091 [-0.414, 0.517] |"),
        ("FLOPs alone", "flops_alone",
         "| FLOPs alone | 0.553 [0.383, 0.700] | 0.438 [0.181, 0.654] | -0.242 [-0.695, 0.228] |"),
        ("supernet - FLOPs (paired)", "minus_flops",
         "| supernet - FLOPs (paired) | -0.047 [-0.226, 0.129] | 0.006 [-0.244, 0.264] | "
         "0.333 [-0.276, 0.983] |"),
        ("partial tau given log FLOPs", "partial_tau",
         "| partial tau given log FLOPs | 0.087 [-0.131, 0.303] | 0.065 [-0.231, 0.346] | "
         "0.091 [-0.452, 0.559] |"),
        ("predictor [log FLOPs, score], leave-one-out", "predictor.kendall_tau",
         "| predictor [log FLOPs, score], leave-one-out | 0.530 [0.361, 0.669] | "
         "0.320 [0.022, 0.543] | -0.152 [-0.509, 0.228] |"),
        ("predictor - FLOPs alone (paired)", "predictor.minus_flops",
         "| predictor - FLOPs alone (paired) | -0.023 [-0.077, 0.026] | -0.117 [-0.292, 0.019] | "
         "0.091 [-0.644, 0.800] |"))
] + [
    ("results-48px-recipe-%d" % i, RANKING, row, RANK_48[label], "",
     lambda r, label=label: recipe_row(label, r))
    for i, (label, row) in enumerate((
        ("C (the default)",
         "| C (the default) | 0.506 [0.335, 0.647] | 0.087 [-0.131, 0.303] | "
         "0.065 [-0.231, 0.346] | 0.091 [-0.452, 0.559] | -0.023 [-0.077, 0.026] |"),
        ("C, last three checkpoints averaged",
         "| C, last three checkpoints averaged | 0.504 [0.327, 0.647] | "
         "0.085 [-0.141, 0.312] | 0.065 [-0.227, 0.353] | 0.091 [-0.429, 0.525] | "
         "-0.021 [-0.074, 0.029] |"),
        ("FLOPs bins (paths uniform over 7 FLOPs bins in 90-620 MFLOPs)",
         "| FLOPs bins (paths uniform over 7 FLOPs bins in 90-620 MFLOPs) | "
         "0.476 [0.287, 0.650] | 0.017 [-0.170, 0.238] | 0.034 [-0.265, 0.362] | "
         "0.212 [-0.302, 0.710] | -0.016 [-0.059, 0.019] |"),
        ("strict fairness (4 paths a step)",
         "| strict fairness (4 paths a step) | 0.474 [0.268, 0.650] | "
         "0.041 [-0.160, 0.280] | 0.009 [-0.335, 0.314] | -0.030 [-0.574, 0.567] | "
         "-0.033 [-0.079, 0.012] |"),
    ))
] + [
    ("results-48px-image-counts-%d" % i, RANKING, row,
     ("docs/ranking/supernet_bins_48px_rank_check.json",
      "docs/ranking/supernet_fair_48px_rank_check.json"), ("image_counts", "image_counts"),
     lambda a, b, i=i: image_count_row(a, b, i))
    for i, row in enumerate((
        "| 625 | 0.22 +- 0.13 / 0.392 +- 0.054 / 0.005 +- 0.050 | "
        "0.23 +- 0.21 / 0.449 +- 0.056 / 0.072 +- 0.047 |",
        "| 1,250 | 0.56 +- 0.09 / 0.443 +- 0.041 / 0.036 +- 0.032 | "
        "0.60 +- 0.07 / 0.451 +- 0.036 / 0.058 +- 0.046 |",
        "| 2,500 | 0.80 +- 0.02 / 0.439 +- 0.037 / 0.015 +- 0.024 | "
        "0.80 +- 0.02 / 0.453 +- 0.027 / 0.054 +- 0.029 |",
        "| 5,000 (all) | 0.89 / 0.476 / 0.017 | 0.90 / 0.474 / 0.041 |"))
] + [
    ("results-48px-image-counts-twice", RANKING,
     "projected for 10,000 images is 0.94 and\n0.95",
     ("docs/ranking/supernet_bins_48px_rank_check.json",
      "docs/ranking/supernet_fair_48px_rank_check.json"),
     ("image_counts", "image_counts"),
     lambda a, b: "projected for %s images is %.2f and %.2f" % (
         thousands(2 * a["images"]), a["reliability_twice_the_images"],
         b["reliability_twice_the_images"])),
    ("results-48px-fair-budget", RANKING,
     "3 epochs of four paths\na step, channel selection from epoch 1, is 10,308 path-steps against "
     "recipe C's 8,590", (TRAIN_48["fair"], SUPERNET_C_48), ("", ""),
     lambda f, c: "%d epochs of four paths a step, channel selection from epoch %d, is %s "
                  "path-steps against recipe C's %s" % (
                      f["config"]["num_epochs"], f["config"]["epoch_start_cs"],
                      thousands(4 * f["num_update"]), thousands(c["num_update"]))
                  if f["config"]["strict_fairness"] else "not strict fairness"),
    ("results-48px-bins-range", RANKING, "7 FLOPs bins in 90-620 MFLOPs", TRAIN_48["bins"],
     "config",
     lambda c: "%d FLOPs bins in %s-%s MFLOPs" % (
         c["flops_bins"] or FLOPS_BINS, c["train_bottom_constraints"].split("-")[1],
         c["train_upper_constraints"].split("-")[1])),
] + [
    ("results-48px-twins", RANKING,
     "Noise floor: 8 rows against their same-function twins (at 48 px", RANK_C_48, "twins",
     lambda t: "Noise floor: %d rows against their same-function twins (at %d px"
               % (len(t["pairs"]), t["input_size"])),
    ("results-48px-twins-gap", RANKING,
     "give a mean gap of 0.0066 in held-out cross-entropy, 0.23 of the scores' standard "
     "deviation over the table", RANK_C_48, "twins",
     lambda t: "give a mean gap of %.4f in held-out cross-entropy, %.2f of the scores' standard "
               "deviation over the table" % (t["mean_gap"], t["gap_over_sd"])),
    ("results-48px-last3-partial", RANKING,
     "partial tau 0.085 [-0.141,\n0.312] over the whole table",
     RANK_C_48_LAST3, "beyond_flops.all.partial_tau",
     lambda v: "partial tau %s over the whole table" % ci3(v)),
    ("results-48px-search-limit", RANKING, "under the matched set's limit (299.73\nMFLOPs)",
     TABLE_48, "sampling",
     lambda s: "under the matched set's limit (%.2f MFLOPs)"
               % (s["matched_flops"] * (1 + s["matched_tolerance"]))),
] + [
    ("results-48px-winner-%s-s%d" % (mode, seed), RANKING, row,
     (WINNER_48 % ("genetic", seed), WINNER_48 % ("random", seed)), ("", ""),
     lambda g, r, mode=mode, seed=seed: winner_row(g, r, mode, seed))
    for mode, seed, row in (
        ("genetic", 0, "| genetic, seed 0 | 87.06 % (86.99 / 87.22 / 86.98) | 267.2 (outside the "
                       "window) | 17 [0, 67] | -0.12 |"),
        ("random", 0, "| random, seed 0 | **87.34 %** (88.13 / 87.05 / 86.83) | 290.5 | "
                      "67 [17, 100] | +0.10 |"),
        ("genetic", 1, "| genetic, seed 1 | 87.14 % (87.18 / 86.93 / 87.31) | 288.2 | "
                       "33 [8, 75] | -0.09 |"),
        ("random", 1, "| random, seed 1 | **87.74 %** (88.01 / 87.70 / 87.52) | 289.3 | "
                      "100 [75, 100] | +0.51 |"),
        ("genetic", 2, "| genetic, seed 2 | **87.73 %** (88.05 / 87.63 / 87.51) | 267.7 (outside "
                       "the window) | 100 [67, 100] | +0.55 |"),
        ("random", 2, "| random, seed 2 | 87.59 % (88.03 / 87.70 / 87.05) | 299.4 | "
                      "100 [50, 100] | +0.34 |"))
] + [
    ("results-48px-winners-count", RANKING,
     "at least as good as the random one stand-alone in 1 of 3 seeds",
     tuple(WINNER_48 % (mode, seed) for seed in range(3) for mode in ("genetic", "random")),
     ("",) * 6,
     lambda *w: genetic_ge_random(*zip(w[0::2], w[1::2]))),
    ("results-48px-winner-noise", RANKING, "0.25 x sqrt(2/3), about 0.20 points", TABLE_48,
     "statistics.matched.spread_against_noise.seed_sd",
     lambda v: "%.2f x sqrt(2/3), about %.2f points" % (100 * v, 100 * v * math.sqrt(2 / 3))),
    ("results-48px-winner-gaps", RANKING, "The differences (0.27, 0.60 and 0.14 points)",
     tuple(WINNER_48 % (mode, seed) for seed in range(3) for mode in ("genetic", "random")),
     ("winner.standalone_top1",) * 6,
     lambda *v: "The differences (%.2f, %.2f and %.2f points)" % tuple(
         abs(100 * (v[2 * i] - v[2 * i + 1])) for i in range(3))),

    # ---- section 6: the 48-px table and supernet ----
    ("results-48px-spread-rows", RESULTS,
     "The same 30 spread rows as the 32-px table (seed 0 on all, seed 1 on 10)", TABLE_48,
     "sampling",
     lambda s: "The same %d spread rows as the 32-px table (seed 0 on all, seed 1 on %d)"
               % (s["k"], s["second_seed_rows"])),
    ("results-48px-matched-set", RESULTS,
     "12 architectures within 3 % of 291 MFLOPs (97 % of the search's limit), each with seeds 0-2",
     TABLE_48, "",
     lambda t: "%d architectures within %.0f %% of %.0f MFLOPs (%.0f %% of the search's limit), "
               "each with seeds 0-%d" % (
                   t["sampling"]["matched_k"], 100 * t["sampling"]["matched_tolerance"],
                   t["sampling"]["matched_flops"],
                   100 * t["sampling"]["matched_flops"] / t["band"]["max_flops"],
                   t["sampling"]["matched_seeds"] - 1)),
    ("results-48px-matched-range", RESULTS, "283-300 MFLOPs, 3.2-4.1 M params", TABLE_48,
     "architectures",
     lambda a: (lambda rows: "%s MFLOPs, %.1f-%.1f M params" % (
         flops_range(rows), min(x["params"] for x in rows), max(x["params"] for x in rows)))(
         [x for x in a if x.get("set") == "matched"])),
    ("results-48px-runs-expected", RESULTS, "76 runs (`runs_expected`)", TABLE_48, "runs_expected",
     lambda v: "%d runs (`runs_expected`)" % v),
    ("results-48px-supernet-record", RESULTS,
     "(`config.input_size` 48, `num_update` 8590, the 5,000-image held-out split with digest "
     "`3a9c340b4cfaa0de`)", SUPERNET_C_48, "",
     lambda r: "(`config.input_size` %d, `num_update` %d, the %s-image held-out split with digest "
               "`%s`)" % (r["config"]["input_size"], r["num_update"],
                          thousands(r["split"]["holdout"]), r["split"]["digest"])),

    # ---- section 6: the 48-px searches (one search_results.json per search) ----
] + [
    ("results-48px-search-seed-%d" % seed, RESULTS, row, (SEARCH_48 % ("genetic", seed),
                                                       SEARCH_48 % ("random", seed)), ("", ""),
     lambda g, r, seed=seed: "| %d | %d | **%.4f** | %.4f | %.2f / %.2f |" % (
         seed, g["evaluated"], g["topk"][0]["loss"], r["topk"][0]["loss"],
         g["topk"][0]["symbol_flops"], r["topk"][0]["symbol_flops"]))
    for seed, row in ((0, "| 0 | 109 | **0.4339** | 0.4475 | 267.25 / 290.53 |"),
                      (1, "| 1 | 117 | **0.4363** | 0.4494 | 288.15 / 289.27 |"),
                      (2, "| 2 | 111 | **0.4364** | 0.4464 | 267.69 / 299.38 |"))
] + [
    ("results-48px-search-wins", RESULTS, "`genetic_wins` (3 of 3)", SEARCH_48_PAIRS, "",
     lambda c: "`genetic_wins` (%d of %d)" % (c["genetic_wins"], len(c["pairs"]))),
] + [
    # ---- the input-size study's kernel pair (input_size_study.runs.json) ----
    ("results-kernel-pair-%dpx" % size, RESULTS, cell, KERNEL_PAIR, "runs",
     lambda runs, size=size: "| %s |" % kernel_pair_gap(runs, size))
    for size, cell in ((32, "| +0.16 points, 0.5 standard errors |"),
                       (48, "| +0.22 points, 0.7 standard errors |"),
                       (64, "| +0.15 points, 0.7 standard errors |"))
] + [
    ("results-48px-table-cost", RESULTS,
     "20.7 worker-hours in all, a median of 634 s a run against 209 s for the 32-px table's "
     "(3.0x, where the quiet one-thread speeds said 1.7x), with 10 runs over 1,500 s",
     ("docs/ranking/fashion_mnist_48px_table.runs.json",
      "docs/ranking/fashion_mnist_table.runs.json"), ("runs", "runs"),
     lambda r48, r32: (lambda s48, s32: "%.1f worker-hours in all, a median of %.0f s a run "
                       "against %.0f s for the 32-px table's (%.1fx, where the quiet one-thread "
                       "speeds said 1.7x), with %d runs over 1,500 s" % (
                           sum(s48) / 3600, median(s48), median(s32),
                           median(s48) / median(s32), sum(x > 1500 for x in s48)))(
         [v["seconds"] for v in r48.values()], [v["seconds"] for v in r32.values()])),
] + [
    ("results-kernel-pair-48px-%dep" % epochs, RESULTS, row, spec, "runs",
     lambda runs, epochs=epochs, label=label: (lambda p: "| %s | %.2f %% | %.2f %% | %s |" % (
         label, p["mean_3x3"], p["mean_7x7"], kernel_pair_gap(runs, 48, epochs)))(
         kernel_pair(runs, 48, epochs)))
    for epochs, label, spec, row in (
        (8, "8 epochs (the table's protocol)", KERNEL_PAIR,
         "| 8 epochs (the table's protocol) | 87.23 % | 87.45 % | +0.22 points, 0.7 standard "
         "errors |"),
        (16, "16 epochs", KERNEL_PAIR_16,
         "| 16 epochs | 88.40 % | 88.69 % | +0.29 points, 1.2 standard errors |"))
] + [
    ("results-kernel-pair-16ep-seeds", RESULTS,
     "ahead in all three 16-epoch pairs (+0.32, +0.42, +0.14), against two of three at 8 epochs",
     (KERNEL_PAIR_16, KERNEL_PAIR), ("runs", "runs"),
     lambda r16, r8: (lambda d16, d8: "ahead in all three 16-epoch pairs (%s), against %s of "
                      "three at 8 epochs" % (", ".join("%+.2f" % d for d in d16),
                                             {0: "none", 1: "one", 2: "two", 3: "all"}[
                                                 sum(d > 0 for d in d8)]))(
         *[[b - a for a, b in zip(p["3x3"], p["7x7"])]
           for p in (kernel_pair(r16, 48, 16), kernel_pair(r8, 48, 8))])),
    ("results-kernel-pair-16ep-cost", RESULTS,
     "The 16-epoch runs took 1,070-1,252 s each on one thread", KERNEL_PAIR_16, "runs",
     lambda runs: "The 16-epoch runs took %s-%s s each on one thread" % (
         thousands(round(min(v["seconds"] for v in runs.values()))),
         thousands(round(max(v["seconds"] for v in runs.values()))))),
    ("results-kernel-pair-16ep-seeds-needed", RESULTS,
     "takes about 9 seeds a side (2 x (2 x 0.30 / 0.29)^2)", KERNEL_PAIR_16, "runs",
     lambda runs: (lambda p: "takes about %d seeds a side (2 x (2 x %.2f / %.2f)^2)" % (
         math.ceil(2 * (2 * p["sd"] / p["diff"]) ** 2), p["sd"], p["diff"]))(
         kernel_pair(runs, 48, 16))),
    ("ranking-kernel-pair-16ep", RANKING,
     "at 16 epochs it differs by +0.29 points, 1.2 standard errors", KERNEL_PAIR_16, "runs",
     lambda runs: "at 16 epochs it differs by %s" % kernel_pair_gap(runs, 48, 16)),
    ("ranking-kernel-pair-64px", RANKING,
     "3 seeds a side) still differs by +0.15 points, 0.7 standard errors", KERNEL_PAIR, "runs",
     lambda runs: "3 seeds a side) still differs by %s" % kernel_pair_gap(runs, 64)),
    ("results-kernel-pair-means", RESULTS,
     "86.18 % against 86.34 % at 32 px, 87.23 % against 87.45 % at 48 px, 87.84 % against "
     "87.99 % at 64 px, seed sd 0.37 / 0.38 / 0.28", KERNEL_PAIR, "runs",
     lambda runs: (lambda pairs: ", ".join(
         "%.2f %% against %.2f %% at %d px" % (p["mean_3x3"], p["mean_7x7"], size)
         for size, p in zip((32, 48, 64), pairs))
         + ", seed sd " + " / ".join("%.2f" % p["sd"] for p in pairs))(
         [kernel_pair(runs, size) for size in (32, 48, 64)])),
]

# Checks whose doc text does not match the committed file are listed here by id, each with
# the reason; they run as strict xfails (the doc is someone else's to fix).
INCONSISTENT = {}


def _params():
    out = []
    for check in CHECKS:
        marks = ()
        if check[0] in INCONSISTENT:
            marks = pytest.mark.xfail(strict=True, reason=INCONSISTENT[check[0]])
        out.append(pytest.param(*check[1:], id=check[0], marks=marks))
    return out


@pytest.mark.parametrize("doc, text, files, paths, formatter", _params())
def test_doc_figure_matches_json(doc, text, files, paths, formatter):
    if isinstance(files, str):
        files, paths = (files,), (paths,)
    assert len(files) == len(paths)
    values = [_resolve(_load(spec), path) for spec, path in zip(files, paths)]
    quoted = _normalise(text)
    assert quoted in _doc(doc), "%s no longer says %r" % (doc, text)
    assert _normalise(formatter(*values)) == quoted, (
        "%s quotes %r, the committed file gives %r" % (doc, text, formatter(*values)))


def test_check_ids_are_unique():
    ids = [check[0] for check in CHECKS]
    assert len(ids) == len(set(ids))
    assert set(INCONSISTENT) <= set(ids)


# ---------------------------------------------------------------------------------------------
# every (`X.json` → `path`) reference names a file that exists and a path that resolves

_FILE_REF = re.compile(r"`(?:git show (?P<commit>[0-9a-f]{7,40}):)?(?P<file>[\w./-]+\.json)`")
_ARROW = re.compile(r"(?: at commit (?P<commit>[0-9a-f]{7,40}))? ?→ ?")
_CODE = re.compile(r"`([^`]+)`")
_SEPARATOR = re.compile(r", | and ")
PLACEHOLDERS = {"file.json"}  # ranking_results.md explains its notation: `file.json` → `a.b.c`


def _file_references(doc):
    """(file, commit or None, [paths]) for every `X.json` → `path`, `path`, ... in ``doc``."""
    text = _doc(doc)
    refs = []
    for m in _FILE_REF.finditer(text):
        arrow = _ARROW.match(text, m.end())
        if m.group("file") in PLACEHOLDERS or arrow is None or "→" not in arrow.group(0):
            continue
        paths = []
        code = _CODE.match(text, arrow.end())
        while code is not None and not code.group(1).endswith(".json"):
            paths.append(code.group(1))
            sep = _SEPARATOR.match(text, code.end())
            code = _CODE.match(text, sep.end()) if sep else None
        refs.append((m.group("file"), m.group("commit") or arrow.group("commit"), paths))
    return refs


def _repo_path(name):
    return name if "/" in name else "docs/ranking/" + name


def _expand(path):
    """Brace and index alternatives into plain paths: ``a.{b, c}`` -> a.b, a.c;
    ``x[0|2]`` -> x[0], x[2]; ``x[0..13]`` -> x[0] ... x[13]."""
    m = re.search(r"\{([^{}]*)\}", path)
    if m:
        return [p for choice in m.group(1).split(",")
                for p in _expand(path[:m.start()] + choice.strip() + path[m.end():])]
    m = re.search(r"\[(\d+)\.\.(\d+)\]|\[(\d+(?:\|\d+)+)\]", path)
    if m:
        if m.group(1):
            choices = range(int(m.group(1)), int(m.group(2)) + 1)
        else:
            choices = [int(i) for i in m.group(3).split("|")]
        return [p for i in choices
                for p in _expand("%s[%d]%s" % (path[:m.start()], i, path[m.end():]))]
    return [path]


def _reference_params():
    """One case per distinct (doc, file, commit) and per distinct path named after it."""
    seen, out = set(), []
    for doc in (README, RESULTS, RANKING):
        for name, commit, paths in _file_references(doc):
            where = "%s@%s" % (name, commit) if commit else name
            for path in [None] + paths:
                if (doc, name, commit, path) in seen:
                    continue
                seen.add((doc, name, commit, path))
                out.append(pytest.param(doc, name, commit, path, id="%s:%s%s" % (
                    doc, where, "" if path is None else " -> " + path)))
    return out


REFERENCES = _reference_params()


def test_references_were_found():
    assert len(REFERENCES) >= 30, "the reference parser found too little: %d" % len(REFERENCES)


@pytest.mark.parametrize("doc, name, commit, path", REFERENCES)
def test_file_reference_resolves(doc, name, commit, path):
    spec = _repo_path(name)
    if commit:
        spec = "git:%s:%s" % (commit, spec)
    else:
        assert os.path.isfile(os.path.join(ROOT, spec)), "%s names %s, which does not exist" % (
            doc, spec)
    data = _load(spec)
    if path is None:
        return
    if "*" in path:
        pytest.skip("wildcard over fields: %s" % path)
    for plain in _expand(path):
        try:
            value = _resolve(data, plain)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            pytest.fail("%s: %s → %s does not resolve (%s: %s)" % (doc, spec, plain,
                                                                  type(e).__name__, e))
        if isinstance(value, list) and "[]" in plain:
            assert value, "%s: %s → %s matches nothing" % (doc, spec, plain)


# ---------------------------------------------------------------------------------------------
# every file ranking_results.md names (data, printouts, plots) is committed

def _named_files():
    text = _doc(RESULTS)
    names = set(re.findall(r"`([\w./-]+\.(?:json|png|txt|log))`", text))
    names |= {"docs/" + n for n in re.findall(r"\]\((ranking/[\w./-]+\.png)\)", text)}
    return sorted(names - PLACEHOLDERS)


@pytest.mark.parametrize("name", _named_files())
def test_results_doc_names_committed_files(name):
    path = _repo_path(name)
    assert os.path.isfile(os.path.join(ROOT, path)), "%s names %s, which does not exist" % (
        RESULTS, path)


def _committed_json_files():
    found = []
    for top in ("docs", "logs"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files
                      if f.endswith(".json")]
    return sorted(found)


def _not_standard(name):
    raise ValueError("%s is Python's extension, not JSON" % name)


@pytest.mark.parametrize("path", _committed_json_files())
def test_committed_json_is_standard_json(path):
    """Every result file parses with a standard JSON reader (jq, a browser): no NaN or
    Infinity, which Python's json module would read back but nothing else does."""
    with open(os.path.join(ROOT, path)) as f:
        json.load(f, parse_constant=_not_standard)
