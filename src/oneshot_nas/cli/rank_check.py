"""``python -m oneshot_nas.cli.rank_check``: does the supernet rank architectures like
stand-alone training does?

With ``--benchmark TABLE`` (minutes, nothing trained): scores the supernet on every
architecture of a stored ground-truth table (``docs/ranking/fashion_mnist_table.json``) and
prints Kendall's tau and Spearman's rho with bootstrap intervals, K, tau within the search's
FLOPs band and the table's own seed-to-seed tau (the ceiling).

Without it: samples K architectures under the search's constraints (spread over the admissible FLOPs),
trains each stand-alone with a short fixed recipe, scores each inside the supernet
(recalibrated, on the held-out search split) and prints Kendall's tau and Spearman's rho with
bootstrap confidence intervals; writes ``rank_check.json`` and ``ranking.png`` to
``--output-dir``. Finished stand-alone runs are cached in ``standalone_cache.json`` there, so a
rerun (e.g. with a larger K or another supernet) trains only what is new. See
:mod:`oneshot_nas.ranking` for the design; ``--protocol-from TABLE`` trains them with a
stored table's protocol instead of the digits one.
"""
import sys

from ..ranking import BenchmarkCheckConfig, RankCheckConfig, run_benchmark_check, run_rank_check
from ..ranking.beyond_flops import SUBSETS
from ..records import SUPERNET_DEFAULTS, apply_record
from .common import (add_model_arguments, add_size_constraint_arguments,
                     add_standalone_arguments, command, new_parser, protocol_from_args, start)

__all__ = ["build_parser", "main"]


def build_parser():
    p = new_parser("Ranking check: supernet score vs stand-alone accuracy (Kendall tau, "
                   "Spearman rho, bootstrap intervals): against a stored table "
                   "(--benchmark), or training K new architectures.",
                   prog="python -m oneshot_nas.cli.rank_check")
    m = p.add_argument_group("supernet")
    m.add_argument("--supernet-params", default=None, nargs="+", metavar="PARAMS",
                   help="trained supernet .params (required unless --scores); with "
                        "--benchmark also several checkpoints of one run: each architecture's "
                        "score is then their mean, image by image")
    m.add_argument("--benchmark", default=None, metavar="TABLE",
                   help="score against this stored ground-truth table (model flags and data "
                        "set from the table); nothing is trained")
    m.add_argument("--score-all-rows", action="store_true",
                   help="--benchmark: also score rows whose stand-alone runs are not finished "
                        "(cached in output-dir/supernet_scores.npz for a later rerun)")
    m.add_argument("--scores", default=None, metavar="SCORES_JSON",
                   help="--benchmark: score nothing; recompute every figure from a scores.json "
                        "an earlier check wrote (per-row and twin scores, reliabilities) and "
                        "the table as it stands now, without the supernet's weights")
    m.add_argument("--twins", type=int, default=8,
                   help="--benchmark: rows also scored against a twin computing the same "
                        "function with other kernels at the table's input size (the "
                        "supernet's noise floor; 0: none)")
    m.add_argument("--image-counts", type=int, nargs="+", default=(), metavar="N",
                   help="--benchmark: also recompute tau and the partial tau on random "
                        "subsets of N of the scoring images each (does scoring on more "
                        "held-out images help?); needs the per-image scores, so not with "
                        "--scores")
    m.add_argument("--image-draws", type=int, default=20,
                   help="--image-counts: random image subsets per count")
    add_model_arguments(m, from_record=True)
    m.add_argument("--holdout-search", type=int, default=None, metavar="N",
                   help="held-out images to score on (default: the supernet's, from its JSON)")
    m.add_argument("--update-bn-images", type=int, default=1024,
                   help="training images for every scored subnet's BN recalibration")
    m.add_argument("--batch-size", type=int, default=128, help="scoring batch size")
    m.add_argument("--score", default="auto", choices=["auto", "acc", "loss"],
                   help="primary supernet score; auto: the less noisy of held-out accuracy "
                        "and held-out loss")

    s = p.add_argument_group("architectures (constraints in MFLOPs / M params at 224 px, "
                             "1000 classes, as in the search)")
    s.add_argument("-k", "--num-archs", type=int, default=12,
                   help="architectures sampled and trained (without --benchmark)")
    add_size_constraint_arguments(s, max_flops=300.0)
    s.add_argument("--seed", type=int, default=0, help="architecture sampling and bootstrap")

    add_standalone_arguments(p)

    r = p.add_argument_group("outputs")
    r.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    r.add_argument("--min-spread", type=float, default=5.0,
                   help="warn when stand-alone accuracies spread over fewer points")
    r.add_argument("--output-dir", default="rank_check",
                   help="folder of rank_check.json, the scatter and the log")
    r.add_argument("--logging-file", default=None, help="default: output-dir/rank_check.log")
    return p


def _run_benchmark(args):
    cfg = BenchmarkCheckConfig(
        benchmark=args.benchmark, supernet_params=(
            args.supernet_params[0] if args.supernet_params and len(args.supernet_params) == 1
            else args.supernet_params),
        holdout_search=args.holdout_search, update_bn_images=args.update_bn_images,
        batch_size=args.batch_size, score=args.score, bootstrap=args.bootstrap,
        seed=args.seed, output_dir=args.output_dir, score_all=args.score_all_rows,
        twins=args.twins, from_scores=args.scores, image_counts=tuple(args.image_counts),
        image_draws=args.image_draws)
    return run_benchmark_check(cfg)


def print_benchmark(res):
    """The benchmark check's figures, one per line."""
    tau, rho = res["kendall_tau"], res["spearman_rho"]
    print("against %s (%s table, K = %d architectures, supernet scores on %d %s images)"
          % (res["benchmark"], "complete" if res["table_complete"] else "INCOMPLETE", res["k"],
             res["split"]["images"], res["split"]["name"]))
    print("supernet score: %s (reliability: accuracy %.2f, loss %.2f)"
          % (res["primary_score_name"], res["reliability"]["acc"], res["reliability"]["loss"]))
    print("Kendall tau  %.3f  [%.3f, %.3f]  (95 %% bootstrap; no correlation: 0 +- %.2f)"
          % (tau["value"], tau["ci"][0], tau["ci"][1], res["null_sd"]))
    print("Spearman rho %.3f  [%.3f, %.3f]" % (rho["value"], rho["ci"][0], rho["ci"][1]))
    for name, label in (("flops", "FLOPs"), ("params", "params")):
        base = res["baselines"][name]
        print("baseline, ranking by %s alone: Kendall tau %.3f [%.3f, %.3f]"
              % (label, base["value"], base["ci"][0], base["ci"][1]))
    c = res["ceiling"]
    print("ceiling: the table's seed-to-seed Kendall tau %s"
          % ("%.3f [%.3f, %.3f]" % (c["value"], c["ci"][0], c["ci"][1]) if c else
             "unknown (fewer than 3 rows with two seeds)"))
    b = res["band"]
    if b:
        bt = b["kendall_tau"]
        ceiling = "; ceiling %.3f" % b["ceiling"]["value"] if b["ceiling"] else ""
        if b.get("ceiling_two_seed_means"):
            ceiling += " (one seed against another; %.3f between two-seed means)" \
                % b["ceiling_two_seed_means"]["value"]
        print("within the search's band (<= %g MFLOPs, K = %d): Kendall tau %.3f [%.3f, %.3f]%s"
              % (b["max_flops"], b["k"], bt["value"], bt["ci"][0], bt["ci"][1], ceiling))
    print_beyond_flops(res)
    if res.get("image_counts"):
        print_image_counts(res["image_counts"])
    print("results: %s\nper-row scores: %s\nplot: %s"
          % (res["results_path"], res["scores_path"], res["plot"]))


def _ci(entry):
    return "%.3f [%.3f, %.3f]" % (entry["value"], entry["ci"][0], entry["ci"][1])


def print_beyond_flops(res):
    """What the supernet adds beyond FLOPs, per subset, and its noise floor."""
    for name, label in SUBSETS:
        f = res["beyond_flops"].get(name)
        if not f:
            continue
        print("%s (K = %d): supernet tau %s, FLOPs alone %s; supernet - FLOPs %s; partial tau "
              "given log FLOPs %s" % (label, f["k"], _ci(f["kendall_tau"]),
                                      _ci(f["flops_alone"]), _ci(f["minus_flops"]),
                                      _ci(f["partial_tau"])))
        if "predictor" in f:
            p = f["predictor"]
            print("%s: leave-one-out predictor from [log FLOPs, supernet score]: tau %s, minus "
                  "FLOPs alone %s" % (label, _ci(p["kendall_tau"]), _ci(p["minus_flops"])))
    t = res.get("twins")
    if t and t["pairs"]:
        print("noise floor: %d rows against same-function twins at %d px: mean score gap %.4f, "
              "%.2f of the scores' sd over the table" % (len(t["pairs"]), t["input_size"],
                                                         t["mean_gap"], t["gap_over_sd"]))


def _mean_sd(entry):
    return "%.3f +- %.3f" % (entry["mean"], entry["sd"])


def print_image_counts(counts):
    """Tau and partial tau on fewer scoring images (mean +- sd over random image subsets)."""
    print("on fewer scoring images (%s score; mean +- sd over random subsets of the %d images; "
          "reliability of twice the images, projected: %.3f):"
          % (counts["score"], counts["images"], counts["reliability_twice_the_images"]))
    for entry in counts["curve"]:
        parts = ["%6d images, %2d draws: reliability %s" % (
            entry["images"], entry["draws"], _mean_sd(entry["reliability"]))]
        for name, label in (("all", "whole"), ("band", "band"), ("matched", "matched")):
            if name in entry:
                parts.append("%s tau %s, partial %s" % (label, _mean_sd(entry[name]["kendall_tau"]),
                                                        _mean_sd(entry[name]["partial_tau"])))
        print("; ".join(parts))


@command("rank_check", resume="rerun the same command: scored architectures and "
         "finished stand-alone runs are cached")
def main(argv=None):
    args = start(build_parser(), argv, "rank_check.log")
    if args.image_counts and not args.benchmark:
        raise ValueError("--image-counts needs --benchmark TABLE")
    if args.scores and not args.benchmark:
        raise ValueError("--scores needs --benchmark TABLE (the table the scores belong to)")
    if not (args.supernet_params or args.scores):
        raise ValueError("--supernet-params is required (or --benchmark TABLE --scores FILE)")
    if args.benchmark:
        print_benchmark(_run_benchmark(args))
        return 0
    if len(args.supernet_params) > 1:
        raise ValueError("several --supernet-params (checkpoint averaging) need --benchmark "
                         "TABLE; training new architectures scores with one supernet")
    args.supernet_params = args.supernet_params[0]
    model = {name: getattr(args, name) for name in ("channels_layout", "use_se",
                                                    "last_conv_after_pooling")}
    apply_record(model, args.supernet_params, SUPERNET_DEFAULTS, fields=tuple(model))
    cfg = RankCheckConfig(
        supernet_params=args.supernet_params, channels_layout=model["channels_layout"],
        use_se=model["use_se"], last_conv_after_pooling=model["last_conv_after_pooling"],
        num_archs=args.num_archs, seed=args.seed, max_flops=args.max_flops,
        max_params=args.max_params, comparison_model=args.comparison_model,
        flop_max=args.flop_max, param_max=args.param_max,
        normalised_score_max=args.normalised_score_max,
        holdout_search=args.holdout_search, update_bn_images=args.update_bn_images,
        batch_size=args.batch_size, score=args.score, bootstrap=args.bootstrap,
        protocol=protocol_from_args(args), min_spread=args.min_spread,
        output_dir=args.output_dir, cache_file=args.cache_file)
    res = run_rank_check(cfg)
    tau, rho = res["kendall_tau"], res["spearman_rho"]
    print("supernet score: %s (reliability: accuracy %.2f, loss %.2f)"
          % (res["primary_score_name"], res["reliability"]["acc"], res["reliability"]["loss"]))
    print("Kendall tau  %.3f  [%.3f, %.3f]  (K = %d; no correlation: 0 +- %.2f)"
          % (tau["value"], tau["ci"][0], tau["ci"][1], res["k"], res["null_sd"]))
    print("Spearman rho %.3f  [%.3f, %.3f]" % (rho["value"], rho["ci"][0], rho["ci"][1]))
    other = "loss" if res["primary_score"] == "acc" else "acc"
    otau = res["correlations"][other]["kendall_tau"]
    print("(with the other score, %s: Kendall tau %.3f [%.3f, %.3f])"
          % (other, otau["value"], otau["ci"][0], otau["ci"][1]))
    print("stand-alone accuracies spread over %.1f points%s"
          % (res["standalone_spread_points"], "" if res["spread_ok"] else
             " (below --min-spread: tau measures noise)"))
    print("results: %s\nplot: %s" % (res["results_path"], res["plot"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
