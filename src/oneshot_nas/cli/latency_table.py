"""Build a latency lookup table on this device and check it against 10 random subnets.

``python -m oneshot_nas.cli.latency_table --output latency.json [--use-se ...]``
"""
import sys

import numpy as np

from ..search.latency import LatencyTable, check_latency_table
from .common import add_model_arguments, command, new_parser, setup_logging


def build_parser():
    p = new_parser(__doc__.splitlines()[0], prog="latency_table")
    g = p.add_argument_group("model")
    add_model_arguments(g)
    g.add_argument("--input-size", type=int, default=224, help="image size (px)")
    g.add_argument("--classes", type=int, default=1000, help="classifier outputs")
    t = p.add_argument_group("timing")
    t.add_argument("--batch-size", type=int, default=1, help="images per timed call")
    t.add_argument("--warmup", type=int, default=5, help="untimed calls per block")
    t.add_argument("--repeats", type=int, default=20,
                   help="timed calls per block (median reported)")
    t.add_argument("--check", type=int, default=10, help="random subnets to check against")
    t.add_argument("--output", required=True, help="JSON file to write")
    return p


@command("latency_table")
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value, low in (("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                             ("--batch-size", args.batch_size, 1), ("--check", args.check, 0),
                             ("--input-size", args.input_size, 32), ("--classes", args.classes, 1)):
        if value < low:
            parser.exit(2, "%s: error: %s must be >= %d, got %d\n" % (parser.prog, flag, low,
                                                                     value))
    setup_logging(None)
    return _run(args, LatencyTable, check_latency_table)


def _run(args, LatencyTable, check_latency_table):
    table = LatencyTable.measure(args.channels_layout, args.use_se, args.last_conv_after_pooling,
                                 args.input_size, args.classes, args.batch_size, args.warmup,
                                 args.repeats)
    table.save(args.output)
    print("latency table for %s written to %s" % (table.device, args.output))
    if args.check:
        rows = check_latency_table(table, args.check, warmup=args.warmup, repeats=args.repeats)
        print("| subnet | predicted ms | measured ms | error |\n|---|---|---|---|")
        for arch, pred, meas in rows:
            print("| %s | %.3f | %.3f | %+.1f %% |" % (arch.block_string(), pred, meas,
                                                      100 * (pred - meas) / meas))
        errs = [abs(p - m) / m for _, p, m in rows]
        print("mean absolute error %.1f %%" % (100 * float(np.mean(errs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
