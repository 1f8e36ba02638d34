"""``search_supernet.py``: random / genetic subnet search in a trained supernet
(docs/design.md, sections 4 and 6)."""
import sys
from dataclasses import asdict, fields

from ..records import SUPERNET_DEFAULTS, apply_record
from ..search.algorithms import SEARCH_SCORES
from ..search.runner import DATASET_SEARCH_DEFAULTS, SearchConfig, run_search, search_defaults
from ..search_space import Architecture
from .common import (add_input_arguments, add_model_arguments, add_size_constraint_arguments,
                     command, data_group, fill_data_defaults, log_settings_line, new_parser,
                     start)

__all__ = ["build_parser", "main"]

def _by_data(name):
    return " (default: %s on ImageNet, %s on digits and Fashion-MNIST)" % (
        DATASET_SEARCH_DEFAULTS["imagenet"][name], DATASET_SEARCH_DEFAULTS["small"][name])


def build_parser():
    p = new_parser("Search subnets of a trained SPOS supernet (BN recalibration per candidate).")
    d = data_group(p, from_record=True)
    d.add_argument("--batch-size", type=int, default=128,
                   help="images per batch of recalibration and scoring")
    d.add_argument("-j", "--num-data-workers", dest="num_workers", type=int, default=4,
                   help="data-loading worker processes (0: load in the search process)")
    add_input_arguments(d)
    d.add_argument("--num-gpus", type=int, default=0, help="evaluate on gpu(0)")
    d.add_argument("--devices", default=None, metavar="LIST",
                   help="evaluate every candidate on these devices instead, e.g. gpu:0,gpu:1 "
                        "or cpu:0,cpu:1 (the same scores as on one device)")

    m = p.add_argument_group("supernet")
    m.add_argument("--supernet-params", required=True, help="trained supernet .params file")
    add_model_arguments(m, from_record=True)

    s = p.add_argument_group("search")
    s.add_argument("--search-mode", default="genetic", choices=["random", "genetic"],
                   help="random sampling or the genetic search (as many candidates either way)")
    s.add_argument("--search-iters", type=int, default=None,
                   help="generations (genetic) or candidates (random)%s" % _by_data("search_iters"))
    s.add_argument("--population-size", type=int, default=None,
                   help="candidates per generation%s" % _by_data("population_size"))
    s.add_argument("--retain-length", type=int, default=None,
                   help="best candidates kept as parents of the next generation%s"
                        % _by_data("retain_length"))
    s.add_argument("--random-select", type=float, default=0.1,
                   help="probability of keeping each other candidate as a parent too")
    s.add_argument("--mutate-chance", type=float, default=0.1,
                   help="probability of mutating each gene of a child")
    s.add_argument("--fixed-block-choices", default=None, help="search channels only")
    s.add_argument("--fixed-channel-choices", default=None, help="search blocks only")
    s.add_argument("--topk", type=int, default=3, help="best candidates reported")
    s.add_argument("--update-bn-images", type=int, default=None,
                   help="training images for every candidate's BN recalibration%s"
                        % _by_data("update_bn_images"))
    s.add_argument("--bn-group-size", type=int, default=32,
                   help="images per BN recalibration group (defines the statistics)")
    s.add_argument("--holdout-search", type=int, default=None, metavar="N",
                   help="score candidates on the N training images the supernet held out "
                        "(default: the count saved beside --supernet-params; 0 scores on the "
                        "validation split)")
    s.add_argument("--val-images", type=int, default=None,
                   help="scoring images per candidate (default all)")
    s.add_argument("--cache-mb", type=int, default=2048,
                   help="keep validation images in memory up to this size")
    s.add_argument("--seed", type=int, default=0, help="seed of the search's random choices")

    o = p.add_argument_group("objective and constraints (MFLOPs / M params at 224 px, 1000 classes)")
    o.add_argument("--search-target", default="acc", choices=["acc", "balanced_flop_acc"],
                   help="fitness: the score, or score - ratio x normalised size "
                        "(needs --comparison-model)")
    o.add_argument("--search-score", default=None, choices=list(SEARCH_SCORES),
                   help="the supernet score the objective uses: held-out top-1, or held-out "
                        "cross-entropy (as exp(-loss), larger is better; less noisy, see "
                        "docs/ranking.md)%s" % _by_data("search_score"))
    add_size_constraint_arguments(o)
    o.add_argument("--score-acc-ratio", type=float, default=None,
                   help="weight of the normalised score; needs --search-target "
                        "balanced_flop_acc (default 1.0)")
    o.add_argument("--latency-table", default=None, help="JSON from oneshot_nas.cli.latency_table")
    o.add_argument("--target-latency", type=float, default=None, help="ms")
    o.add_argument("--hard-latency", action="store_true", help="hard latency constraint")

    r = p.add_argument_group("outputs")
    r.add_argument("--output-dir", default="search_results",
                   help="folder of search_results.json, the checkpoint and the plots")
    r.add_argument("--resume", action="store_true", help="continue from output-dir's checkpoint")
    r.add_argument("--export-best", default=None, help="export the best subnet to this folder")
    r.add_argument("--logging-file", default=None, help="default: output-dir/search.log")
    r.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (a log line per candidate)")
    return p


@command("search_supernet.py", resume="rerun the same command with --resume to go on from "
         "the checkpoint in --output-dir (every finished generation is kept)")
def main(argv=None):
    args = start(build_parser(), argv, "search.log", log_settings=False)
    values = {f.name: getattr(args, f.name) for f in fields(SearchConfig) if hasattr(args, f.name)}
    apply_record(values, args.supernet_params, SUPERNET_DEFAULTS)
    values.pop("_record")
    for name, value in search_defaults(values["dataset"]).items():
        if values.get(name) is None:
            values[name] = value
    fill_data_defaults(values)
    if args.fixed_block_choices:
        Architecture.parse(args.fixed_block_choices)
    if args.fixed_channel_choices:
        Architecture.parse_channels(args.fixed_channel_choices)
    cfg = SearchConfig(**values)
    log_settings_line(asdict(cfg))   # after the record and the data set's defaults filled in
    results = run_search(cfg)
    for rank, rec in enumerate(results["topk"], 1):
        loss = "" if rec.get("loss") is None else "  loss %.4f" % rec["loss"]
        print("#%d top-1 %.4f%s  FLOPs %.2f M  params %.3f M  fitness %.4f\n   %s"
              % (rank, rec["top1"], loss, rec["symbol_flops"], rec["symbol_params"],
                 rec["fitness"], rec["script_command"]))
    print("results: %s" % results["results_path"])
    return 0

if __name__ == "__main__":
    sys.exit(main())
