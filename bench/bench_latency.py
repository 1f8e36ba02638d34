"""Latency lookup table versus measurement: rank correlation over random subnets, one run.

Builds the per-block latency table (search/latency.py) on this CPU, then times ``--subnets``
random fixed subnets end to end and compares each with the table's prediction (the sum of its
stem, blocks and tail). Prints a markdown table, the Spearman rank correlation of predicted vs
measured latency (the figure the latency objective relies on: it ranks candidates) and the
mean absolute error; with ``--output FILE`` writes them as a markdown section.
"""
import argparse
import sys
import time

import numpy as np
from scipy.stats import spearmanr

from bench_common import write_section

from oneshot_nas.machine import describe_machine
from oneshot_nas.search.latency import LatencyTable, check_latency_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--subnets", type=int, default=10, help="random subnets to time")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per figure (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-spearman", type=float, default=0.8,
                        help="target: the report says whether it is met (a benchmark reports; "
                             "it never fails the run)")
    parser.add_argument("--output", help="write the markdown section to this file")
    args = parser.parse_args(argv)

    tic = time.perf_counter()
    table = LatencyTable.measure(input_size=args.input_size, classes=1000,
                                 batch_size=args.batch_size, warmup=args.warmup,
                                 repeats=args.repeats, progress=False)
    build_s = time.perf_counter() - tic
    rows = check_latency_table(table, n=args.subnets, seed=args.seed, warmup=args.warmup,
                               repeats=args.repeats)
    predicted = np.array([p for _, p, _ in rows])
    measured = np.array([m for _, _, m in rows])
    rho = float(spearmanr(predicted, measured).correlation)
    mae = float(np.mean(np.abs(predicted - measured) / measured))

    lines = ["| subnet (blocks / channels) | predicted ms | measured ms | error |",
             "|---|---:|---:|---:|"]
    for arch, pred, meas in rows:
        lines.append("| %s / %s | %.3f | %.3f | %+.1f %% |"
                     % (arch.block_string(), "".join(str(c) for c in arch.channels), pred, meas,
                        100 * (pred - meas) / meas))
    lines.append("")
    lines.append("Spearman rank correlation (predicted vs measured, %d subnets): **%.3f** "
                 "(target >= %.2f: %s)  " % (len(rows), rho, args.min_spearman,
                                            "met" if rho >= args.min_spearman else "NOT met"))
    lines.append("Mean absolute error: %.1f %%  " % (100 * mae))
    lines.append("Table built in %.0f s (%d block entries)." % (build_s, table.blocks_ms.size))
    report = "\n".join(lines)
    print(report)
    print("spearman=%.3f" % rho)
    if args.output:
        write_section(args.output,
                      "## Latency lookup table vs measured subnet latency\n\nMachine: %s  \n"
                      "Command: `python bench/bench_latency.py %s`  \n%d px, batch %d, median of "
                      "%d runs per figure, in one run.\n\n%s\n"
                      % (describe_machine(), " ".join(argv if argv is not None else sys.argv[1:]),
                         args.input_size, args.batch_size, args.repeats, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
