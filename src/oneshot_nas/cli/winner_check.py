"""``python -m oneshot_nas.cli.winner_check``: the searched winner trained stand-alone beside
random architectures under the same constraints (the search's data set: the digits protocol,
or on Fashion-MNIST the table's protocol at the search's input size).

Reads a ``search_results.json`` (its constraints, model flags and held-out split), samples
``--num-random`` architectures under the same constraints as the random search does, trains
them and the search's best with the ranking check's stand-alone protocol (same flags, same
cache format) and reports the winner's accuracy, the random median / best / worst and the
winner's rank; writes ``winner_check.json`` and ``winner_vs_random.png`` to ``--output-dir``.
"""
import sys

from ..ranking import StandaloneProtocol, WinnerCheckConfig, run_winner_check
from ..ranking.winner import read_search_results
from ..records import current_command
from .common import add_standalone_arguments, command, new_parser, protocol_from_args, start

__all__ = ["build_parser", "main"]


def build_parser():
    p = new_parser("Train the search's winner and random architectures under the same "
                   "constraints stand-alone (the search's data set) and compare.",
                   prog="python -m oneshot_nas.cli.winner_check")
    g = p.add_argument_group("inputs")
    g.add_argument("--search-results", required=True, help="search_results.json of a search")
    g.add_argument("--num-random", type=int, default=10,
                   help="random architectures under the same constraints")
    g.add_argument("--seed", type=int, default=0, help="random architecture sampling")
    g.add_argument("--benchmark", default=None, metavar="TABLE",
                   help="train only the winner, with this stored table's protocol "
                        "(--standalone-seeds; default: as many seeds as the table's "
                        "FLOPs-matched rows have, else its band rows), and place it among the "
                        "matched set, else among the table's architectures under the search's "
                        "constraints (its percentile)")
    add_standalone_arguments(p)
    p.set_defaults(standalone_seeds=None)
    r = p.add_argument_group("outputs")
    r.add_argument("--output-dir", default="winner_check",
                   help="folder of winner_check.json, the plot and the log")
    r.add_argument("--logging-file", default=None, help="default: output-dir/winner_check.log")
    return p


# --standalone-* flag -> protocol field
_FLAG_FIELDS = (("standalone_epochs", "epochs"), ("standalone_lr", "lr"),
                ("standalone_batch_size", "batch_size"),
                ("standalone_warmup_epochs", "warmup_epochs"), ("standalone_wd", "wd"),
                ("standalone_optimizer", "optimizer"), ("standalone_no_augment", "augment"))


def _protocol(args, parser):
    """The stand-alone protocol: a table's (``--protocol-from``, ``--benchmark``), else the
    default of the data set the search ran on (digits: the flags' defaults; Fashion-MNIST: the
    table's protocol at the search's input size), with the ``--standalone-*`` flags the user
    typed on top."""
    protocol = protocol_from_args(args)
    if args.protocol_from or args.benchmark:
        return protocol
    _, scfg, _ = read_search_results(args.search_results)
    if scfg.get("dataset") != "fashion-mnist":
        return protocol
    typed = {field: getattr(protocol, field) for dest, field in _FLAG_FIELDS
             if getattr(args, dest) != parser.get_default(dest)}
    return StandaloneProtocol.fashion_mnist(input_size=scfg.get("input_size") or 0,
                                            seeds=protocol.seeds,
                                            max_batches_per_epoch=args.max_batches_per_epoch,
                                            **typed)


@command("winner_check", resume="rerun the same command: finished stand-alone runs "
         "are cached")
def main(argv=None):
    parser = build_parser()
    args = start(parser, argv, "winner_check.log")
    protocol = _protocol(args, parser)
    cfg = WinnerCheckConfig(search_results=args.search_results, num_random=args.num_random,
                            seed=args.seed, protocol=protocol, output_dir=args.output_dir,
                            cache_file=args.cache_file, benchmark=args.benchmark,
                            seeds=protocol.seeds if args.standalone_seeds else None,
                            command=current_command())
    res = run_winner_check(cfg)
    accs = sorted(r["standalone_top1"] for r in res["random"])
    print("winner stand-alone top-1 %.2f %%  (%s / %s, %.1f MFLOPs)"
          % (100 * res["winner"]["standalone_top1"], res["winner"]["block_choices"],
             res["winner"]["channel_choices"], res["winner"]["flops"]))
    if res.get("mode") == "benchmark":
        print("%d architectures of %s: median %.2f %%, best %.2f %%; the winner's "
              "percentile %.0f (rank %d of %d)"
              % (len(accs), res["peers"], 100 * res["random_median_top1"],
                 100 * res["random_best_top1"], res["percentile"], res["winner_rank"],
                 len(accs) + 1))
        noise = res["percentile_noise"]
        if noise is None:
            print("seed noise unknown (no architecture has two seeds): no interval")
        else:
            print("seed noise alone (sd %.2f points, %d architectures with 2+ seeds): percentile "
                  "%.0f %% interval [%.0f, %.0f]; top quarter in %.0f %% of draws"
                  % (100 * noise["seed_sd"], noise["architectures_with_seeds"],
                     100 * noise["level"], noise["ci"][0], noise["ci"][1],
                     100 * noise["p_top_quarter"]))
        line = res.get("flops_line")
        if line is not None:
            print("FLOPs line over %d %s: %.2f %% predicted at %.1f MFLOPs; the winner %+.2f "
                  "points from it (rows' residual sd %.2f points)"
                  % (line["rows"], line["over"], 100 * line["predicted_top1"],
                     res["winner"]["flops"], 100 * line["residual"], 100 * line["residual_sd"]))
        window = res.get("matched_window")
        if window is not None and not window["inside"]:
            print("outside the matched set's window (%.1f-%.1f MFLOPs): the percentile mixes "
                  "search and size; compare winners by their distance from the FLOPs line"
                  % tuple(window["flops"]))
        print("results: %s\nplot: %s" % (res["results_path"], res["plot"]))
        return 0
    print("%d random under %s: median %.2f %%, best %.2f %%, worst %.2f %%"
          % (len(accs), res["constraints"], 100 * res["random_median_top1"],
             100 * res["random_best_top1"], 100 * res["random_worst_top1"]))
    print("random stand-alone top-1: %s" % ", ".join("%.2f" % (100 * a) for a in accs))
    print("winner rank %d of %d; beats the random median: %s"
          % (res["winner_rank"], len(accs) + 1, "yes" if res["winner_beats_median"] else "no"))
    print("results: %s\nplot: %s" % (res["results_path"], res["plot"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
