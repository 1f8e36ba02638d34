"""``python -m oneshot_nas.cli.build_table``: build (or resume, or audit) a ground-truth table.

Samples K architectures spread over FLOPs, trains each stand-alone with one fixed protocol
(default: the Fashion-MNIST protocol of ``docs/ranking.md``) and writes the table JSON that
``rank_check --benchmark`` scores supernets against. Every finished run is cached in
``<output>.runs.json``: rerunning the same command trains only what is missing.
``--rebuild-rows 3,17 --output other.json`` trains chosen rows of a stored table again and
prints the stored and the new accuracies side by side.
"""
import argparse
import json
import logging
import math
import os
import sys

from ..data import DATASETS
from ..ranking.protocol import StandaloneProtocol
from ..ranking.table import TableSpec, build_table, rebuild_rows
from ..search_space import CHANNEL_LAYOUTS
from .common import add_protocol_arguments, command, new_parser, setup_logging

__all__ = ["build_parser", "main", "DEFAULT_TABLE"]

DEFAULT_TABLE = os.path.join("docs", "ranking", "fashion_mnist_table.json")


def build_parser():
    spec = TableSpec()
    d = spec.protocol
    p = new_parser("Build, resume or audit a ground-truth table of stand-alone accuracies.",
                   prog="python -m oneshot_nas.cli.build_table")
    t = p.add_argument_group("table")
    t.add_argument("--output", default=DEFAULT_TABLE, help="table JSON (resumed if present)")
    t.add_argument("--cache-file", default=None, help="runs cache (default <output>.runs.json)")
    t.add_argument("-k", "--num-archs", type=int, default=spec.k,
                   help="architectures (rows) in the table")
    t.add_argument("--seed", type=int, default=spec.seed, help="architecture sampling")
    t.add_argument("--max-flops", type=float, default=None,
                   help="sample under this many MFLOPs (224 px units); default: the whole space")
    t.add_argument("--second-seed-rows", type=int, default=spec.second_seed_rows,
                   help="rows (spread over FLOPs) also trained with seed 1")
    t.add_argument("--band-max-flops", type=float, default=spec.band_max_flops,
                   help="the search's FLOPs limit: statistics are also reported below it")
    t.add_argument("--band-seeds", type=int, default=spec.band_seeds,
                   help="rows under --band-max-flops are trained with seeds 0..N-1 (their means "
                        "rank a search winner)")
    m = p.add_argument_group("FLOPs-matched set (rows FLOPs cannot order)")
    m.add_argument("--matched-archs", type=int, default=spec.matched_k,
                   help="architectures within --matched-tolerance of --matched-flops, chosen to "
                        "differ in block types and widths (0: no matched set)")
    m.add_argument("--matched-flops", type=float, default=None,
                   help="their FLOPs target in MFLOPs (default: 97 %% of --band-max-flops)")
    m.add_argument("--matched-tolerance", type=float, default=spec.matched_tolerance,
                   help="allowed relative distance from the target")
    m.add_argument("--matched-seeds", type=int, default=spec.matched_seeds,
                   help="seeds 0..N-1 of every matched row")
    t.add_argument("--rebuild-rows", default=None,
                   help="comma-separated rows of the table --table to train again into --output")
    t.add_argument("--table", default=DEFAULT_TABLE, help="the stored table (--rebuild-rows)")
    t.add_argument("--status", action="store_true",
                   help="train nothing: write the table from the finished runs and print it")
    t.add_argument("--workers", type=int, default=1,
                   help="runs trained at once, one process each sharing the cores (2 on a "
                        "2-core machine is faster); a finished worker takes the next run")
    t.add_argument("--job", default=None, help=argparse.SUPPRESS)   # ROW/SEED: one run
    t.add_argument("--rows", default=None, help=argparse.SUPPRESS)

    g = p.add_argument_group("stand-alone protocol")
    g.add_argument("--dataset", default=d.dataset, choices=DATASETS,
                   help="data set of the stand-alone runs")
    g.add_argument("--train-subset", type=int, default=d.train_subset,
                   help="stratified training images per run, a multiple of 10 (0: all)")
    add_protocol_arguments(g, d)
    g.add_argument("--input-size", type=int, default=0,
                   help="input size in px (0: the data set's own, 32 for Fashion-MNIST; other "
                        "sizes resize the padded 32-px image bilinearly)")
    g.add_argument("--val-interval", type=int, default=d.val_interval,
                   help="also test every N epochs (the curve stored with each run)")
    g.add_argument("--no-augment", action="store_true", help="no training augmentation")
    g.add_argument("--label-smoothing", action="store_true", help="label smoothing 0.1")
    g.add_argument("--channels-layout", default=d.channels_layout,
                   choices=sorted(CHANNEL_LAYOUTS), help="stage widths of the architectures")
    g.add_argument("--no-se", dest="use_se", action="store_false",
                   help="architectures without squeeze-and-excitation (default: with)")
    g.add_argument("--no-last-conv-after-pooling", dest="last_conv_after_pooling",
                   action="store_false",
                   help="architectures with the last conv before pooling (default: after)")
    g.add_argument("--max-batches-per-epoch", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--logging-file", default=None, help="default: <output>.log")
    return p


def _int_list(text, flag):
    try:
        return [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError("%s must be comma-separated integers, got %r" % (flag, text)) from None


def spec_from_args(args):
    if args.epochs < 1:
        raise ValueError("--epochs must be >= 1, got %d" % args.epochs)
    if args.input_size and not 16 <= args.input_size <= 512:
        raise ValueError("--input-size must be 0 or in 16..512 px, got %d" % args.input_size)
    protocol = StandaloneProtocol.fashion_mnist(
        dataset=args.dataset, train_subset=args.train_subset, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, warmup_epochs=args.warmup_epochs, wd=args.wd,
        optimizer=args.optimizer, val_interval=args.val_interval, augment=not args.no_augment,
        label_smoothing=args.label_smoothing, channels_layout=args.channels_layout,
        use_se=args.use_se, last_conv_after_pooling=args.last_conv_after_pooling,
        max_batches_per_epoch=args.max_batches_per_epoch, input_size=args.input_size)
    return TableSpec(k=args.num_archs, seed=args.seed, max_flops=args.max_flops,
                     second_seed_rows=args.second_seed_rows, band_seeds=args.band_seeds,
                     band_max_flops=args.band_max_flops, protocol=protocol,
                     matched_k=args.matched_archs, matched_flops=args.matched_flops,
                     matched_tolerance=args.matched_tolerance,
                     matched_seeds=args.matched_seeds).validate()


def _interval(entry):
    return "%.3f [%.3f, %.3f]" % (entry["value"], entry["ci"][0], entry["ci"][1])


def _subset_labels(table):
    labels = [("all", "whole table"), ("band", "FLOPs <= %s M" % table["band"]["max_flops"])]
    s = table["sampling"]
    if s.get("matched_k"):
        labels.append(("matched", "matched set (%.1f MFLOPs +- %g %%)"
                       % (s["matched_flops"], 100 * s["matched_tolerance"])))
    return labels


def _fmt(value, scale, pattern="%.2f"):
    """A figure for the summary; ``n/a`` when it could not be computed (NaN in memory, null in
    a stored table: e.g. the seed sd without a row with two seeds)."""
    if value is None or math.isnan(value):
        return "n/a"
    return pattern % (scale * value)


def print_summary(table):
    stats = table["statistics"]
    print("table: %d architectures, %d of %d runs finished%s"
          % (len(table["architectures"]), table["runs_done"], table["runs_expected"],
             "" if table["complete"] else " (incomplete: rerun the command to resume)"))
    seconds = [run["seconds"] for r in table["architectures"] for run in r["runs"]
               if run.get("seconds")]
    left = table["runs_expected"] - table["runs_done"]
    if left > 0 and seconds:
        median = float(sorted(seconds)[len(seconds) // 2])
        print("left: %d runs, about %.1f hours of one worker (--workers N divides it) at the "
              "median time of the finished runs, %.1f minutes a run on the machine they ran on"
              % (left, left * median / 3600.0, median / 60.0))
    for name, label in _subset_labels(table):
        entry = stats.get(name, {})
        s2s = entry.get("seed_to_seed")
        if s2s:
            print("%s: seed-to-seed Kendall tau %s over %d rows with two seeds (null sd %.2f)"
                  % (label, _interval(s2s["kendall_tau"]), entry["rows_with_two_seeds"],
                     s2s["null_sd"]))
        else:
            print("%s: %d rows with two seeds (< 3: no seed-to-seed tau)"
                  % (label, entry.get("rows_with_two_seeds", 0)))
        halves = entry.get("two_seed_means")
        if halves:
            print("%s: Kendall tau %s between the means of seeds 0-1 and 2-3 over %d rows with "
                  "four seeds" % (label, _interval(halves["kendall_tau"]), halves["rows"]))
        residual = entry.get("residual_seed_to_seed")
        if residual:
            print("%s: residual seed-to-seed Kendall tau %s over %d rows (accuracy after a "
                  "least-squares line on log FLOPs: what FLOPs cannot see)"
                  % (label, _interval(residual["kendall_tau"]), residual["rows"]))
        if "flops_alone" in entry:
            print("%s: ranking by size alone, mean top-1 against FLOPs: Kendall tau %s; "
                  "against params: %s" % (label, _interval(entry["flops_alone"]),
                                          _interval(entry["params_alone"])))
        noise = entry.get("spread_against_noise")
        if noise:
            print("%s: %d rows; mean top-1 spread (sd) %s points, seed sd %s points, ratio "
                  "%s; range %s points" % (label, entry["rows"], _fmt(noise["spread_sd"], 100),
                                           _fmt(noise["seed_sd"], 100),
                                           _fmt(noise["ratio"], 1, "%.1f"),
                                           _fmt(noise["range"], 100)))


@command("build_table", resume="rerun the same command: finished runs are cached and "
         "only the others are trained")
def main(argv=None):
    args = build_parser().parse_args(argv)
    log = args.logging_file or os.path.splitext(args.output)[0] + ".log"
    setup_logging(log if args.job is None else None)    # a worker logs to the build's stderr
    if args.rebuild_rows:
        res = rebuild_rows(args.table, _int_list(args.rebuild_rows, "--rebuild-rows"),
                           args.output)
        sd = res["seed_sd"]             # None or NaN: no stored row with two seeds
        sd = None if sd is None or math.isnan(sd) else sd
        for c in res["comparison"]:
            print("row %d seed %d: stored %.2f %%, rebuilt %.2f %%, difference %+.2f points%s"
                  % (c["row"], c["seed"], 100 * c["stored_top1"], 100 * c["new_top1"],
                     100 * c["difference"],
                     "" if not sd else " (%.1f seed sd)" % (abs(c["difference"]) / sd)))
        print("rebuilt rows: %s" % args.output)
        return 0
    spec = spec_from_args(args)
    only = None
    if args.job:
        only = {tuple(_int_list(args.job.replace("/", ","), "--job"))}
    rows = set(_int_list(args.rows, "--rows")) if args.rows else None
    if only is None:
        logging.getLogger(__name__).info("settings: %s", json.dumps(vars(args), sort_keys=True))
    table = build_table(spec, args.output, args.cache_file, workers=args.workers,
                        only=only, rows=rows, train=not args.status)
    if only is None:
        print_summary(table)
        print("table: %s" % args.output)
    return 0

if __name__ == "__main__":
    sys.exit(main())
