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
import argparse
import json
import logging
import os
import sys

from .train_imagenet import setup_logging

__all__ = ["build_parser", "main", "add_standalone_arguments", "protocol_from_args"]


def add_standalone_arguments(parser):
    """The stand-alone protocol's flag group (shared with ``winner_check``)."""
    from ..ranking import StandaloneProtocol
    d = StandaloneProtocol()
    g = parser.add_argument_group("stand-alone protocol (default: digits, 32 px; the ranking's "
                                  "ground truth: validation top-1 after the last epoch)")
    g.add_argument("--protocol-from", default=None, metavar="TABLE",
                   help="train with the protocol of this stored table (its data set, images, "
                        "epochs, lr, ...); the --standalone-* flags below are then ignored "
                        "except --standalone-seeds")
    g.add_argument("--standalone-epochs", type=int, default=d.epochs)
    g.add_argument("--standalone-lr", type=float, default=d.lr)
    g.add_argument("--standalone-batch-size", type=int, default=d.batch_size)
    g.add_argument("--standalone-warmup-epochs", type=int, default=d.warmup_epochs)
    g.add_argument("--standalone-wd", type=float, default=d.wd)
    g.add_argument("--standalone-optimizer", default=d.optimizer, choices=["nag", "sgd", "adam"])
    g.add_argument("--standalone-no-augment", action="store_true",
                   help="train without the digits shift augmentation")
    g.add_argument("--standalone-seeds", default=",".join(str(s) for s in d.seeds),
                   help="comma-separated seeds; the accuracy is their mean")
    g.add_argument("--cache-file", default=None,
                   help="finished stand-alone runs (default: output-dir/standalone_cache.json)")
    g.add_argument("--max-batches-per-epoch", type=int, default=0, help=argparse.SUPPRESS)
    return g


def protocol_from_args(args):
    """:class:`StandaloneProtocol` from the flags; ValueError naming a bad flag."""
    from ..ranking import StandaloneProtocol, load_table
    try:
        seeds = tuple(int(s) for s in str(args.standalone_seeds).split(",") if s.strip())
    except ValueError:
        raise ValueError("--standalone-seeds must be comma-separated integers, got %r"
                         % args.standalone_seeds) from None
    if not seeds:
        raise ValueError("--standalone-seeds is empty")
    if getattr(args, "protocol_from", None):
        table = load_table(args.protocol_from)
        return StandaloneProtocol.from_dict(dict(table["protocol"], seeds=list(seeds)))
    if args.standalone_epochs < 1:
        raise ValueError("--standalone-epochs must be >= 1, got %d" % args.standalone_epochs)
    if args.standalone_batch_size < 1:
        raise ValueError("--standalone-batch-size must be >= 1, got %d"
                         % args.standalone_batch_size)
    if not args.standalone_lr > 0:
        raise ValueError("--standalone-lr must be > 0, got %r" % args.standalone_lr)
    return StandaloneProtocol(
        epochs=args.standalone_epochs, lr=args.standalone_lr,
        batch_size=args.standalone_batch_size, warmup_epochs=args.standalone_warmup_epochs,
        wd=args.standalone_wd, optimizer=args.standalone_optimizer,
        augment=not args.standalone_no_augment, seeds=seeds,
        max_batches_per_epoch=args.max_batches_per_epoch)


def build_parser():
    from ..search.algorithms import COMPARISON_MODELS
    from ..search_space import CHANNEL_LAYOUTS
    p = argparse.ArgumentParser(
        prog="python -m oneshot_nas.cli.rank_check",
        description="Ranking check: supernet score vs stand-alone accuracy (Kendall tau, "
                    "Spearman rho, bootstrap intervals): against a stored table "
                    "(--benchmark), or training K new architectures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m = p.add_argument_group("supernet")
    m.add_argument("--supernet-params", required=True, help="trained supernet .params")
    m.add_argument("--benchmark", default=None, metavar="TABLE",
                   help="score against this stored ground-truth table (model flags and data "
                        "set from the table); nothing is trained")
    m.add_argument("--score-all-rows", action="store_true",
                   help="--benchmark: also score rows whose stand-alone runs are not finished "
                        "(cached in output-dir/supernet_scores.npz for a later rerun)")
    m.add_argument("--channels-layout", default="OneShot", choices=sorted(CHANNEL_LAYOUTS))
    m.add_argument("--no-se", dest="use_se", action="store_false",
                   help="the supernet has no SE modules (default: --use-se, as the scripts)")
    m.add_argument("--no-last-conv-after-pooling", dest="last_conv_after_pooling",
                   action="store_false")
    m.add_argument("--holdout-search", type=int, default=None, metavar="N",
                   help="held-out images to score on (default: the supernet's, from its JSON)")
    m.add_argument("--update-bn-images", type=int, default=1024)
    m.add_argument("--batch-size", type=int, default=128, help="scoring batch size")
    m.add_argument("--score", default="auto", choices=["auto", "acc", "loss"],
                   help="primary supernet score; auto: the less noisy of held-out accuracy "
                        "and held-out loss")

    s = p.add_argument_group("architectures (constraints in MFLOPs / M params at 224 px, "
                             "1000 classes, as in the search)")
    s.add_argument("-k", "--num-archs", type=int, default=12)
    s.add_argument("--max-flops", type=float, default=300.0)
    s.add_argument("--max-params", type=float, default=None)
    s.add_argument("--comparison-model", default=None, choices=sorted(COMPARISON_MODELS))
    s.add_argument("--flop-max", type=float, default=None)
    s.add_argument("--param-max", type=float, default=None)
    s.add_argument("--normalised-score-max", type=float, default=None)
    s.add_argument("--seed", type=int, default=0, help="architecture sampling and bootstrap")

    add_standalone_arguments(p)

    r = p.add_argument_group("outputs")
    r.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    r.add_argument("--min-spread", type=float, default=5.0,
                   help="warn when stand-alone accuracies spread over fewer points")
    r.add_argument("--output-dir", default="rank_check")
    r.add_argument("--logging-file", default=None, help="default: output-dir/rank_check.log")
    return p


def _run_benchmark(args):
    from ..ranking import BenchmarkCheckConfig, run_benchmark_check
    cfg = BenchmarkCheckConfig(
        benchmark=args.benchmark, supernet_params=args.supernet_params,
        holdout_search=args.holdout_search, update_bn_images=args.update_bn_images,
        batch_size=args.batch_size, score=args.score, bootstrap=args.bootstrap,
        seed=args.seed, output_dir=args.output_dir, score_all=args.score_all_rows)
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
        print("within the search's band (<= %g MFLOPs, K = %d): Kendall tau %.3f [%.3f, %.3f]%s"
              % (b["max_flops"], b["k"], bt["value"], bt["ci"][0], bt["ci"][1],
                 "; ceiling %.3f" % b["ceiling"]["value"] if b["ceiling"] else ""))
    print("results: %s\nplot: %s" % (res["results_path"], res["plot"]))


def main(argv=None):
    from ..ranking import RankCheckConfig, run_rank_check
    from .errors import report, user_errors
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.logging_file or os.path.join(args.output_dir, "rank_check.log"))
    logging.getLogger(__name__).info("settings: %s", json.dumps(vars(args), sort_keys=True))
    if args.benchmark:
        try:
            res = _run_benchmark(args)
        except user_errors() as err:
            return report("rank_check", err)
        print_benchmark(res)
        return 0
    try:
        protocol = protocol_from_args(args)
        cfg = RankCheckConfig(
            supernet_params=args.supernet_params, channels_layout=args.channels_layout,
            use_se=args.use_se, last_conv_after_pooling=args.last_conv_after_pooling,
            num_archs=args.num_archs, seed=args.seed, max_flops=args.max_flops,
            max_params=args.max_params, comparison_model=args.comparison_model,
            flop_max=args.flop_max, param_max=args.param_max,
            normalised_score_max=args.normalised_score_max,
            holdout_search=args.holdout_search, update_bn_images=args.update_bn_images,
            batch_size=args.batch_size, score=args.score, bootstrap=args.bootstrap,
            protocol=protocol, min_spread=args.min_spread, output_dir=args.output_dir,
            cache_file=args.cache_file)
        res = run_rank_check(cfg)
    except user_errors() as err:
        return report("rank_check", err)
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
