"""Speed of FLOPs / params counting: symbolic count, build + export + count, lookup table.

Prints a markdown table and (with --output FILE) writes it as a markdown section with the
machine description. All figures come from one run (medians of repeats). The earlier port's
figures (docs/design.md, section 7) are shown beside ours for orientation only: another run
measured them.
"""
import argparse
import os
import sys
import tempfile

import mxnet as mx
import numpy as np

from bench_common import median_seconds, write_section

from oneshot_nas import Architecture, get_model
from oneshot_nas.machine import describe_machine
from oneshot_nas.models.zoo import PRESETS
from oneshot_nas.profiling import (LookupTable, build_symbol, count_symbol, load_symbol,
                                   micronet_profile)

EARLIER_PORT = {"build_export_count": 1.28, "lookup_us": 6.6}
TARGETS = {"count": 0.25, "build_export_count": 0.5, "lookup_us": 10.0, "many": 100000}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per figure")
    parser.add_argument("--population", type=int, default=100000,
                        help="architectures per vectorised lookup")
    parser.add_argument("--output", help="write the markdown section to this file")
    args = parser.parse_args(argv)

    (blocks, channels), config = PRESETS["OneShot-S+"]
    arch = Architecture.parse(blocks, channels)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_profiling_") as tmp:
        # An exported OneShot-S+ symbol, as ShuffleNasOneShotFix.export writes it.
        net = get_model("OneShot-S+")
        net.initialize()
        net.hybridize()
        net(mx.nd.zeros((1, 3, 224, 224)))
        prefix = os.path.join(tmp, "oneshot-s+")
        net.export(prefix)
        shapes = {"data": (1, 3, 224, 224)}

        print("symbolic count ...", file=sys.stderr, flush=True)
        t_count = median_seconds(
            lambda: count_symbol(load_symbol(prefix), shapes, relu_bn=False), 1, args.repeats)
        rows.append(("count an exported OneShot-S+ symbol (load JSON + count)", "%.4f s" % t_count,
                     "< %.2f s" % TARGETS["count"], "-"))
        t_micro = median_seconds(lambda: micronet_profile(load_symbol(prefix), shapes), 1,
                                 args.repeats)
        rows.append(("MicroNet profile of the same symbol", "%.4f s" % t_micro, "-", "-"))

        def build_export_count():
            path = os.path.join(tmp, "built-symbol.json")
            build_symbol(arch, **config).save(path)
            return count_symbol(load_symbol(path), shapes, relu_bn=False)
        t_bec = median_seconds(build_export_count, 1, args.repeats)
        rows.append(("build OneShot-S+, export its symbol, count (calculate_flops --model, "
                     "count_flops_params method='symbol')", "%.4f s" % t_bec,
                     "< %.2f s" % TARGETS["build_export_count"],
                     "%.2f s" % EARLIER_PORT["build_export_count"]))

        def full_export_count():
            model = get_model("OneShot-S+")
            model.initialize()
            model.hybridize()
            model(mx.nd.zeros((1, 3, 224, 224)))
            model.export(os.path.join(tmp, "full"))
            return count_symbol(load_symbol(os.path.join(tmp, "full")), shapes, relu_bn=False)
        t_full = median_seconds(full_export_count, 1, max(3, args.repeats // 2))
        rows.append(("same with initialised weights, forward pass and params file "
                     "(HybridBlock.export)", "%.4f s" % t_full, "-",
                     "%.2f s" % EARLIER_PORT["build_export_count"]))

        print("lookup table ...", file=sys.stderr, flush=True)
        cache = os.path.join(tmp, "cache")
        t_build = median_seconds(lambda: LookupTable.load_or_build(
            cache_dir=cache, rebuild=True, progress=False, **config), 0, 3)
        rows.append(("build the lookup table of one configuration (cold, 800 entries)",
                     "%.2f s" % t_build, "-", "-"))
        t_load = median_seconds(lambda: LookupTable.load_or_build(cache_dir=cache, **config), 1,
                                args.repeats)
        rows.append(("load the cached lookup table", "%.2f ms" % (t_load * 1e3), "-", "-"))

        table = LookupTable.load_or_build(cache_dir=cache, **config)
        rng = np.random.default_rng(0)
        archs = [Architecture.sample(rng) for _ in range(10000)]

        def singles():
            for a in archs:
                table.flops_params(a)
        t_single = median_seconds(singles, 1, args.repeats) / len(archs)
        rows.append(("one lookup, `table.flops_params(arch)`", "%.2f us" % (t_single * 1e6),
                     "< %.0f us" % TARGETS["lookup_us"], "%.1f us" % EARLIER_PORT["lookup_us"]))

        b = rng.integers(0, 4, (args.population, 20))
        c = rng.integers(0, 10, (args.population, 20))
        t_many = median_seconds(lambda: table.flops_params_many(b, c), 1, args.repeats)
        rows.append(("vectorised lookup, `table.flops_params_many` over %d architectures"
                     % args.population, "%.0f arch/s" % (args.population / t_many),
                     "> %d arch/s" % TARGETS["many"], "-"))

    lines = ["| work | this run | target | earlier port |",
             "|---|---:|---:|---:|"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows]
    report = "\n".join(lines)
    print(report)
    if args.output:
        write_section(args.output, "## FLOPs / params counting\n\nMachine: %s  \nCommand: "
                      "`python bench/bench_profiling.py %s`  \nMedian of %d repeats in one "
                      "run.\n\n%s\n" % (describe_machine(), " ".join(argv if argv is not None
                                                                   else sys.argv[1:]),
                                         args.repeats, report))


if __name__ == "__main__":
    main()
