"""``train_imagenet.py``: train the supernet or a fixed subnet (flags: docs/design.md,
section 6)."""
import logging
import os
import shlex
import sys
from dataclasses import fields

from ..models import list_models
from ..records import record_path
from ..training import train
from ..training.config import (DEFAULT_HARD_WEIGHT, DEFAULT_MIXUP_ALPHA, DEFAULT_TEMPERATURE,
                               TrainConfig)
from ..training.checkpoint import latest_checkpoint
from ..training.samplers import FLOPS_BINS
from ..training.trainer import refuse_another_runs_files
from ..training.watchdog import stacks_on_terminate
from .common import (OPTIMIZERS, add_input_arguments, add_model_arguments, add_switches,
                     command, data_group, fill_data_defaults, log_settings_line, new_parser,
                     report_crashes, setup_logging)

__all__ = ["build_parser", "main"]


def build_parser():
    p = new_parser("Train the SPOS supernet (--model ShuffleNas) or a fixed subnet.")
    _data_arguments(data_group(p))
    _model_arguments(p.add_argument_group("model"))
    _supernet_arguments(p.add_argument_group("supernet"))
    _optimisation_arguments(p.add_argument_group("optimisation"))
    _run_arguments(p.add_argument_group("checkpoints, logs, distribution"))
    return p


def _data_arguments(d):
    d.add_argument("--batch-size", type=int, default=32, help="per device")
    d.add_argument("--num-gpus", type=int, default=0, help="train on gpu(0) .. gpu(N-1)")
    d.add_argument("--devices", default=None, metavar="LIST",
                   help="train on these devices instead, e.g. gpu:2,gpu:3 or cpu:0,cpu:1 (every "
                        "batch is split between them, kvstore device; --batch-size is per "
                        "device)")
    d.add_argument("-j", "--num-data-workers", dest="num_workers", type=int, default=4,
                   help="data-loading worker processes (0: load in the training process)")
    add_input_arguments(d)
    d.add_argument("--reduced-dataset-scale", type=int, default=1,
                   help="train on 1/k of the training set")
    d.add_argument("--no-augment", action="store_true", help="no training augmentation")
    d.add_argument("--holdout-search", type=int, default=0, metavar="N",
                   help="hold N training images out of training for the search to score "
                        "candidates on (a fixed seeded subset; SPOS: 50000); a supernet is "
                        "then validated on them and the validation split stays unseen")


def _model_arguments(m):
    m.add_argument("--model", default="ShuffleNas",
                   help="one of: %s" % ", ".join(list_models()))
    m.add_argument("--block-choices", default=None, help="20 comma-separated block choices 0..3")
    m.add_argument("--channel-choices", default=None,
                   help="20 comma-separated channel choices 0..9")
    add_model_arguments(m)
    m.add_argument("--mode", default="hybrid", choices=["hybrid", "imperative"],
                   help="hybrid: cached graphs (a fixed subnet is exported at the end)")
    m.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                   help="training precision (float16 needs GPUs)")


def _supernet_arguments(s):
    add_switches(
        s, ("--use-all-blocks", "average the outputs of all four choice blocks of every layer"),
        ("--strict-fairness", "every step trains four paths that take each layer's four block "
                              "types once (FairNAS), one update from their mean gradient"),
        ("--affine-free-bn", "choice-block BatchNorm without gamma / beta (the official SPOS "
                             "supernet)"),
        ("--use-all-channels", "always train at full width (no channel selection)"),
        ("--cs-warm-up", "widen the channel range gradually"),
        ("--ignore-first-two-cs", "never sample 0.2x / 0.4x"))
    s.add_argument("--epoch-start-cs", type=int, default=0,
                   help="first epoch with channel selection")
    s.add_argument("--train-upper-constraints", default=None, help="e.g. flops-330-params-5.0")
    s.add_argument("--train-bottom-constraints", default=None, help="e.g. flops-190-params-2.8")
    s.add_argument("--train-constraint-method", default=None,
                   choices=["random", "evolution", "bins"],
                   help="how paths inside the constraint box are drawn: rejection (random), "
                        "strolling evolution, or uniform over FLOPs bins (bins: a bin first, "
                        "then a uniform path inside it, as official SPOS) (default with a box: "
                        "random)")
    s.add_argument("--flops-bins", type=int, default=None, metavar="N",
                   help="--train-constraint-method bins: equal FLOPs bins across the box "
                        "(default: %d)" % FLOPS_BINS)
    s.add_argument("--flop-param-method", default="lookup_table",
                   choices=["lookup_table", "symbol"],
                   help="how sampled paths' MFLOPs / M params are counted (the lookup table is "
                        "exact and about 10^5 times faster)")
    s.add_argument("--update-bn-images", type=int, default=20000,
                   help="training images for BN recalibration before supernet validation")
    s.add_argument("--val-subnets", type=int, default=1,
                   help="random subnets evaluated per supernet validation")
    s.add_argument("--val-interval", type=int, default=1,
                   help="validate every N epochs (and after the last one)")


def _optimisation_arguments(o):
    o.add_argument("--num-epochs", type=int, default=120, help="training epochs (>= 1)")
    o.add_argument("--lr", type=float, default=0.1, help="per worker; scaled by Horovod size")
    o.add_argument("--optimizer", default="nag", choices=OPTIMIZERS, help="optimizer")
    o.add_argument("--lr-mode", default="cosine", choices=["step", "poly", "cosine"],
                   help="learning-rate schedule after the warm-up")
    o.add_argument("--lr-decay", type=float, default=0.1,
                   help="step schedule: factor at every decay epoch")
    o.add_argument("--lr-decay-period", type=int, default=0,
                   help="step schedule: decay every N epochs (0: at --lr-decay-epoch)")
    o.add_argument("--lr-decay-epoch", default="40,60",
                   help="step schedule: comma-separated decay epochs")
    o.add_argument("--warmup-lr", type=float, default=0.0,
                   help="learning rate at the start of the linear warm-up")
    o.add_argument("--warmup-epochs", type=int, default=0, help="linear warm-up (epochs)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD / NAG momentum")
    o.add_argument("--wd", type=float, default=1e-4, help="weight decay")
    o.add_argument("--no-wd", action="store_true", help="no weight decay on BN and biases")
    o.add_argument("--label-smoothing", action="store_true",
                   help="label smoothing 0.1 (GluonCV's)")
    o.add_argument("--mixup", action="store_true", help="mixup training")
    o.add_argument("--mixup-alpha", type=float, default=None,
                   help="Beta(alpha, alpha) mixing weights; needs --mixup (default %g)"
                        % DEFAULT_MIXUP_ALPHA)
    o.add_argument("--mixup-off-epoch", type=int, default=0,
                   help="no mixup in the last N epochs; needs --mixup")
    o.add_argument("--teacher", default=None, help="registered model used as teacher")
    o.add_argument("--teacher-params", default=None, help="local params file of the teacher")
    o.add_argument("--temperature", type=float, default=None,
                   help="distillation temperature; needs --teacher (default %g)"
                        % DEFAULT_TEMPERATURE)
    o.add_argument("--hard-weight", type=float, default=None,
                   help="weight of the hard-label loss; needs --teacher (default %g)"
                        % DEFAULT_HARD_WEIGHT)


def _run_arguments(c):
    c.add_argument("--save-frequency", type=int, default=10,
                   help="write a checkpoint every N epochs (0: none; a new best always)")
    c.add_argument("--save-dir", default="params",
                   help="folder of checkpoints, final weights and the exported symbol")
    c.add_argument("--resume-epoch", type=int, default=0,
                   help="with --resume-params and no checkpoint .json: the epoch to go on from")
    c.add_argument("--resume-params", default="",
                   help="weights to start from; with a checkpoint's .json beside it, also that "
                        "checkpoint's epoch and .states (see --resume-states)")
    c.add_argument("--resume-states", default="",
                   help="trainer states file: a Python pickle (MXNet optimizer states), which "
                        "can run code when loaded; load only states files from a trusted source")
    c.add_argument("--auto-resume", action="store_true",
                   help="continue from the latest complete checkpoint in --save-dir (it loads "
                        "that checkpoint's .states pickle: use it on your own save folders "
                        "only)")
    c.add_argument("--log-interval", type=int, default=50,
                   help="log a line (and a metrics record) every N batches (0: none)")
    c.add_argument("--logging-file", default="train_imagenet.log", help="text log")
    c.add_argument("--metrics-file", default=None,
                   help="JSON-lines metrics (default: logging file + .jsonl)")
    c.add_argument("--seed", type=int, default=0,
                   help="seed of every random choice (weights, data order, sampled paths)")
    c.add_argument("--horovod", action="store_true", help="launched by horovodrun")
    c.add_argument("--watchdog-seconds", type=int, default=600, metavar="S",
                   help="with --horovod: a worker that finishes no batch (training, "
                        "recalibration or validation) for S seconds prints its threads' stacks "
                        "and exits, and horovodrun stops the others, which print theirs "
                        "(0: no watchdog)")
    c.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars (log lines only)")
    c.add_argument("--max-batches-per-epoch", type=int, default=0, metavar="N",
                   help="end every epoch after N batches, for tiny smoke runs (0: whole epochs)")


def args_to_config(args):
    """Validate flags that need more than argparse and build a :class:`TrainConfig`."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    fill_data_defaults(values)
    if args.metrics_file is None and args.logging_file:
        values["metrics_file"] = os.path.splitext(args.logging_file)[0] + ".jsonl"
    return TrainConfig(**values).validate()


def _resume_hint(argv):
    """After Ctrl-C: --auto-resume when the run has saved a checkpoint, else that there is
    none to go on from."""
    cfg = args_to_config(build_parser().parse_args(argv))
    if cfg.save_dir and latest_checkpoint(cfg.save_dir, cfg.file_prefix):
        return "rerun the same command with --auto-resume to go on from the last checkpoint " \
               "in %s" % cfg.save_dir
    return "no epoch checkpoint in %s yet (--save-frequency %d); rerun the same command to " \
           "start again" % (cfg.save_dir, cfg.save_frequency)


@command("train_imagenet.py", resume=_resume_hint)
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = 0
    if args.horovod:
        # a worker that crashes must die (its peers would wait for it forever); a hung one
        # prints its threads' Python stacks on SIGUSR1, and on SIGTERM (horovodrun stopping
        # it after another worker failed, e.g. by its watchdog) before it ends
        report_crashes()
        stacks_on_terminate()
        try:
            import horovod.mxnet as hvd  # optional: horovod (the dist extra)
            hvd.init()
            rank = hvd.rank()
        except ImportError:
            parser.exit(2, "%s: error: --horovod needs horovod with MXNet support (make "
                           "install)\n" % parser.prog)
    cfg = args_to_config(args)
    if rank == 0 and cfg.save_dir:
        refuse_another_runs_files(cfg)      # before the log opens: a refusal writes nothing
    setup_logging(args.logging_file, rank)
    log_settings_line(cfg.to_dict())
    # bad data files, impossible constraints, a full disk, ...: one line, exit code 2
    summary = train(cfg)
    if rank == 0:
        logging.getLogger(__name__).info("best validation top-1: %.4f", summary["best_top1"])
        print(_where_it_went(cfg, summary))
    return 0


def _where_it_went(cfg, summary):
    """The files a user needs next and the next command, filled in to run as printed."""
    final = summary.get("final_params")
    if not final:
        return "no weights written (--save-dir is empty)"
    lines = ["final weights: %s (training record %s)" % (final, record_path(final))]
    exported = summary.get("exported")
    if exported:
        lines.append("exported graph: %s, %s (preprocessing and class names: %s)"
                     % (exported["symbol"], exported["params"], exported["deploy"]))
        lines.append("next: python -m oneshot_nas.cli.export_onnx --symbol %s"
                     % shlex.quote(exported["symbol"]))
    elif cfg.is_supernet:
        lines.append("next: python search_supernet.py --supernet-params %s --output-dir %s"
                     % (shlex.quote(final), shlex.quote(os.path.join(
                         os.path.dirname(final) or ".", "search"))))
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
