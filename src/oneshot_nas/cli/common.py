"""The command-line kit every command imports (commands import this, never each other).

* parsers: :func:`new_parser` (flat GluonCV flags, defaults shown), :class:`OneLineParser`
  (a usage error in one line) and :func:`parse_args` (exit codes instead of ``SystemExit``);
* argument groups built from the library's own lists: where the data comes from and the input
  it is turned into (``data.factory.DATASETS``), the supernet's shape (``CHANNEL_LAYOUTS``), a
  fixed subnet (``list_models()``), the stand-alone protocol (``StandaloneProtocol``);
* one logging set-up: :func:`setup_logging` (for the whole process) and :func:`cli_logging`
  (for one ``main()`` call), both with :func:`_handlers`;
* :func:`report_crashes` for worker processes: a native crash ends the process with the Python
  stacks of its threads, and a signal prints them on demand;
* one ``main`` wrapper, :func:`command`: every error a user can cause (bad flags or files, data
  MXNet cannot decode, a full disk, a diverging run, see :func:`.errors.user_errors`) becomes
  one line on stderr and exit status 2.
"""
import argparse
import contextlib
import faulthandler
import functools
import json
import logging
import os
import signal
import sys

from ..data.factory import DATASETS, DEFAULT_IMAGENET_DIR, default_input_size
from ..data.fashion_mnist import DEBIAN_DIR
from ..models import list_models
from ..ranking import StandaloneProtocol, load_table
from ..records import set_command
from ..search.algorithms import COMPARISON_MODELS
from ..search_space import CHANNEL_LAYOUTS
from .errors import report, user_errors

__all__ = ["new_parser", "OneLineParser", "parse_args", "start", "log_settings_line",
           "run_parsed", "setup_logging", "cli_logging", "report_crashes", "command", "OPTIMIZERS",
           "add_switches", "add_data_source_arguments", "add_input_arguments",
           "fill_data_defaults", "data_group",
           "add_model_arguments", "add_subnet_arguments", "add_protocol_arguments",
           "add_standalone_arguments", "protocol_from_args"]

OPTIMIZERS = ("nag", "sgd", "adam")
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


# -- parsers ----------------------------------------------------------------------------------
class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every valued flag's help ends with its default; an on / off switch's does not (``--no-x
    (default: True)`` would read backwards)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _module_run():
    """``oneshot_nas.cli.x`` when this process runs a command module with ``python -m``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None) or ""
    return name if name.startswith("oneshot_nas.cli.") else None


def invoked_name(default, module_form=False):
    """The name the user typed: the installed command (``oneshot-train``, ...) when run as
    one, with ``module_form`` ``python -m oneshot_nas.cli.x`` when run that way (usage
    lines), else ``default`` (the script or short name, which error lines start with)."""
    name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "")
    if name.startswith("oneshot-"):
        return name
    module = _module_run() if module_form else None
    return "python -m " + module if module else default


def new_parser(description, prog=None, parser_class=argparse.ArgumentParser):
    """A parser that shows every valued flag's default in ``--help``; its usage line names the
    installed command when that is what ran."""
    return parser_class(prog=invoked_name(prog, module_form=True), description=description,
                        formatter_class=_DefaultsFormatter)


class OneLineParser(argparse.ArgumentParser):
    """argparse reporting a usage error in one line (exit status 2)."""

    def error(self, message):
        self.exit(2, "%s: error: %s\n" % (self.prog, message))


def parse_args(parser, argv):
    """``parser.parse_args`` returning ``(args, None)`` or ``(None, exit code)`` instead of
    exiting (``--help``: 0, usage errors: 2, already reported in one line)."""
    try:
        return parser.parse_args(argv), None
    except SystemExit as exc:
        return None, exc.code if isinstance(exc.code, int) else 2


def start(parser, argv, log_name=None, log_settings=True):
    """``parser``'s arguments, with logging set up for the rest of the process: to
    ``--logging-file``, else with ``log_name`` to that file in ``--output-dir`` (and then the
    settings are logged first, unless ``log_settings`` is false: a command that fills values
    in from a record logs its resolved settings itself), else to the console only."""
    args = parser.parse_args(argv)
    logging_file = getattr(args, "logging_file", None)
    if log_name and not logging_file:
        logging_file = os.path.join(args.output_dir, log_name)
    setup_logging(logging_file)
    if log_name and log_settings:
        log_settings_line(vars(args))
    return args


def log_settings_line(settings):
    """The ``settings: {...}`` line every command's log starts with (JSON, sorted keys)."""
    logging.getLogger(__name__).info("settings: %s", json.dumps(settings, sort_keys=True,
                                                                default=str))


def run_parsed(parser, argv, run, level=logging.WARNING):
    """``run(args)`` on ``parser``'s arguments, with console logging at ``level`` for the call;
    returns ``(0, run's result)``, or ``(exit code, None)`` when parsing ended the command
    (``--help``: 0; a usage error, already reported in one line: 2)."""
    args, code = parse_args(parser, argv)
    if args is None:
        return code, None
    with cli_logging(level=level):
        return 0, run(args)


# -- logging ----------------------------------------------------------------------------------
# Folders made by _handlers for a log file and the log files in them: a command refused with
# a one-line error removes them again when they hold nothing else (_remove_log_only_folders).
_LOG_FOLDERS = []


def _handlers(logging_file):
    """A console (stderr) handler, and a file handler when ``logging_file`` is given."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if logging_file:
        folder = os.path.dirname(os.path.abspath(logging_file))
        missing = folder
        while missing and not os.path.exists(missing):
            _LOG_FOLDERS.append((missing, os.path.basename(logging_file)))
            missing = os.path.dirname(missing)
        os.makedirs(folder, exist_ok=True)
        handlers.append(logging.FileHandler(logging_file))
    return handlers


def _remove_log_only_folders():
    """After a refused command: the folders made for its log, deepest first, when they hold
    nothing but that log (a refused command leaves nothing behind)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    while _LOG_FOLDERS:
        folder, log_name = _LOG_FOLDERS.pop(0)
        try:
            names = os.listdir(folder)
            if set(names) <= {log_name}:
                for name in names:
                    os.remove(os.path.join(folder, name))
                os.rmdir(folder)
        except OSError:
            return


def setup_logging(logging_file=None, rank=0):
    """Console + file handlers on the root logger for the rest of the process (configured
    once, in ``main``; Horovod workers other than rank 0 log to the console only)."""
    logging.basicConfig(level=logging.INFO, handlers=_handlers(logging_file if rank == 0
                                                               else None),
                        force=True, format=_FORMAT)


# Signals of a native crash. MXNet 1.9.1 installs a handler for SIGSEGV when its library is
# loaded; the others keep their default action, as they get it back here.
_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT)


def report_crashes(dump_signal=signal.SIGUSR1):
    """Make a native crash end this process at once, after printing the Python stack of every
    thread on stderr; ``dump_signal`` (None: none) prints those stacks on demand.

    For the whole process, from its ``main()`` (Horovod workers). MXNet 1.9.1's SIGSEGV
    handler prints ``Segmentation fault: 11`` and calls ``exit()`` inside the signal handler:
    the crashed process then runs its exit handlers and its libraries' destructors with one
    thread stopped mid-operation. A Horovod worker crashed that way was seen to stay alive
    (until horovodrun killed it) without taking part in collectives any more, so that the
    other worker waited for it. With the default action back, the crash kills the process
    at once (status -11), and horovodrun stops the other workers.
    """
    import mxnet  # noqa: F401  (loading its library installs MXNet's handler; replace it)
    for crash in _CRASH_SIGNALS:
        signal.signal(crash, signal.SIG_DFL)
    # faulthandler prints the stacks, restores the default action and raises the signal again
    faulthandler.enable(file=sys.stderr, all_threads=True)
    if dump_signal is not None:
        faulthandler.register(dump_signal, file=sys.stderr, all_threads=True)


@contextlib.contextmanager
def cli_logging(logging_file=None, level=logging.INFO):
    """Console (stderr) and optional file handlers on the root logger for the duration of a
    ``main()`` call; removed afterwards, so that ``main`` can be called from other code."""
    root = logging.getLogger()
    handlers = _handlers(logging_file)
    old_level = root.level
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(old_level)


# -- the main wrapper -------------------------------------------------------------------------
def _drain_engine():
    """Let MXNet finish the operations an interrupted step left queued on its engine."""
    mx = sys.modules.get("mxnet")
    if mx is None:
        return
    try:
        mx.nd.waitall()
    except (Exception, KeyboardInterrupt):     # a second Ctrl-C: leave as we are
        pass


def _running_as_command():
    """True when this process is one of the project's commands (a script, ``python -m
    oneshot_nas.cli.x`` or an installed ``oneshot-*``), not a program that called ``main``."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(path)
    return name.startswith("oneshot-") or name in _SCRIPTS or \
        os.path.join("oneshot_nas", "cli") in os.path.abspath(path)


_SCRIPTS = ("train_imagenet.py", "search_supernet.py", "calculate_flops.py")


def _command_words(module, argv):
    """The command line a user would type to run ``module``'s ``main(argv)`` again: the
    installed ``oneshot-*`` name or top-level script when that is what ran, else ``python -m
    module``."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(path)
    if argv is None and name.startswith("oneshot-"):
        return [name] + args
    if argv is None and name in _SCRIPTS:
        return ["python", path] + args
    if module == "__main__":            # this module run with python -m
        module = _module_run() or name
    return ["python", "-m", module] + args


def _exit_now(status):
    """End the process without the interpreter's shutdown. After an interrupted step MXNet
    1.9.1 can abort in its exit-time destructors ("terminate called without an active
    exception", status -6; twice in about 25 interrupts here) even with the engine drained;
    everything worth keeping is already on disk (checkpoints and caches are written
    atomically), so the logs are flushed and the process ends with ``status``."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _resume_hint(resume, argv):
    """``resume`` itself, or what ``resume(argv)`` says (it looks at what the run saved)."""
    if not callable(resume):
        return resume
    try:
        return resume(argv)
    except Exception:                           # pylint: disable=broad-except
        return None                             # Ctrl-C still ends in one line


def command(prog, resume=None):
    """Decorator of a command's ``main(argv=None)``: an error a user can cause, raised
    anywhere in it, is printed as ``prog: error: <one line>`` and ``main`` returns 2; Ctrl-C
    prints ``prog: interrupted; <resume>`` (how to go on from what was saved; a callable is
    given the command's ``argv`` and returns that text) and returns 130, without a
    traceback."""
    def wrap(main):
        @functools.wraps(main)
        def guarded(argv=None):
            del _LOG_FOLDERS[:]
            set_command(_command_words(main.__module__, argv))
            try:
                return main(argv)
            except user_errors() as err:
                _remove_log_only_folders()
                return report(invoked_name(prog), err)
            except KeyboardInterrupt:
                hint = _resume_hint(resume, argv)
                print("%s: interrupted%s" % (invoked_name(prog), "; " + hint if hint else ""),
                      file=sys.stderr, flush=True)
                if "mxnet" in sys.modules:
                    if _running_as_command():
                        _exit_now(130)
                    _drain_engine()             # main() called by a program that goes on
                return 130
        return guarded
    return wrap


# -- argument groups --------------------------------------------------------------------------
def add_switches(group, *switches):
    """On / off flags (``store_true``), each given as ``(flag, help)``."""
    for flag, text in switches:
        group.add_argument(flag, action="store_true", help=text)


_REC = os.path.join("~", ".mxnet", "datasets", "imagenet", "rec")


def add_data_source_arguments(group, from_record=False):
    """``--dataset``, ``--data-dir``, the ``--rec-*`` files and ``--use-rec``; ``from_record``:
    the data set defaults to the supernet's training record (then imagenet)."""
    group.add_argument("--dataset", default=None if from_record else "imagenet",
                       choices=DATASETS,
                       help=("default: the supernet's training record, else imagenet. "
                             if from_record else "") +
                       "imagenet: --use-rec or --data-dir; digits: the bundled "
                            "scikit-learn digits; fashion-mnist: the IDX files (Debian's "
                            "dataset-fashion-mnist, or --data-dir); synthetic: random tensors "
                            "for speed checks")
    group.add_argument("--data-dir", default=None,
                       help="ImageNet-style folder with train/ and val/ (default %s); "
                            "fashion-mnist: the folder of its IDX files (default %s, then "
                            "~/.mxnet/datasets/fashion-mnist)" % (DEFAULT_IMAGENET_DIR, DEBIAN_DIR))
    for flag, name in (("--rec-train", "train.rec"), ("--rec-train-idx", "train.idx"),
                       ("--rec-val", "val.rec"), ("--rec-val-idx", "val.idx")):
        group.add_argument(flag, default=os.path.expanduser(os.path.join(_REC, name)),
                           help="ImageNet RecordIO file %s (with --use-rec)" % name)
    group.add_argument("--use-rec", action="store_true", help="read ImageNet from RecordIO")


def add_input_arguments(group):
    """``--input-size``, ``--crop-ratio`` and ``--train-subset``."""
    group.add_argument("--input-size", type=int, default=None,
                       help="default 224 (ImageNet) or 32 (digits, fashion-mnist)")
    group.add_argument("--crop-ratio", type=float, default=0.875,
                       help="ImageNet validation: centre crop of this share of the resized "
                            "short side")
    group.add_argument("--train-subset", type=int, default=0, metavar="N",
                       help="fashion-mnist: train on a fixed stratified subset of N training "
                            "images, a multiple of 10 (the same count of every class; 0: all "
                            "that the held-out split leaves)")


def fill_data_defaults(values):
    """Defaults that depend on ``values['dataset']``: input size, ImageNet folder."""
    if values.get("input_size") is None:
        values["input_size"] = default_input_size(values["dataset"])
    if values.get("data_dir") is None and values["dataset"] == "imagenet":
        values["data_dir"] = os.path.expanduser(DEFAULT_IMAGENET_DIR)
    return values


def data_group(parser, from_record=False):
    """The ``data`` group of a parser, opened with :func:`add_data_source_arguments`."""
    group = parser.add_argument_group("data")
    add_data_source_arguments(group, from_record)
    return group


def add_model_arguments(group, from_record=False):
    """The supernet's shape: ``--channels-layout``, ``--use-se``, ``--last-conv-after-pooling``
    (the fields of :class:`oneshot_nas.config.ModelConfig`). ``from_record``: every flag
    defaults to the supernet's training record (see :mod:`oneshot_nas.records`), and
    ``--no-se`` / ``--no-last-conv-after-pooling`` can say the opposite explicitly."""
    if not from_record:
        group.add_argument("--channels-layout", default="OneShot",
                           choices=sorted(CHANNEL_LAYOUTS),
                           help="stage widths: OneShot 64/160/320/640, ShuffleNetV2+ "
                                "48/128/256/512")
        add_switches(group, ("--use-se", "squeeze-and-excitation in stages 2-3 and hard-swish "
                                         "activations"),
                     ("--last-conv-after-pooling", "the 1024-wide last conv after global "
                                                   "pooling (MobileNetV3 style)"))
        return
    group.add_argument("--channels-layout", default=None, choices=sorted(CHANNEL_LAYOUTS),
                       help="stage widths (default: the supernet's record, else OneShot)")
    for flag, dest, value, text in (
            ("--use-se", "use_se", True, "the supernet has squeeze-and-excitation"),
            ("--no-se", "use_se", False, "the supernet has no squeeze-and-excitation"),
            ("--last-conv-after-pooling", "last_conv_after_pooling", True,
             "the supernet's last conv is after pooling"),
            ("--no-last-conv-after-pooling", "last_conv_after_pooling", False,
             "the supernet's last conv is before pooling")):
        group.add_argument(flag, dest=dest, action="store_const", const=value, default=None,
                           help=text + " (default: its record, else no)")


def add_subnet_arguments(group, shuffle_help):
    """A fixed subnet to deploy: ``--model`` (a preset or ShuffleNas_fixArch) and its choices,
    the model flags (default: the preset's or the params file's), ``--classes``,
    ``--shuffle-method`` and ``--params``."""
    group.add_argument("--model", default=None,
                       help="preset or ShuffleNas_fixArch; one of: %s" % ", ".join(list_models()))
    group.add_argument("--block-choices", default=None, help="20 comma-separated block choices")
    group.add_argument("--channel-choices", default=None,
                       help="20 comma-separated channel choices")
    group.add_argument("--channels-layout", default=None, choices=sorted(CHANNEL_LAYOUTS),
                       help="stage widths (None: the preset's or the params file's)")
    group.add_argument("--use-se", action="store_true", default=None,
                       help="squeeze-and-excitation (None: the preset's or the params file's)")
    group.add_argument("--last-conv-after-pooling", action="store_true", default=None,
                       help="last conv after pooling (None: the preset's or the params file's)")
    group.add_argument("--classes", type=int, default=None,
                       help="default: read from the classifier in --params, else 1000")
    group.add_argument("--shuffle-method", default="reshape", choices=["reshape", "conv"],
                       help=shuffle_help)
    group.add_argument("--params", default=None,
                       help="trained weights (net.save_parameters), or with --symbol the "
                            "exported -0000.params")


def add_size_constraint_arguments(group, max_flops=None):
    """The size limits of a search (and of the ranking check's sampling), in MFLOPs / M params
    at 224 px and 1000 classes: absolute (``--max-flops``, ``--max-params``) or relative to a
    comparison model (``--flop-max``, ``--param-max``, ``--normalised-score-max``)."""
    group.add_argument("--max-flops", type=float, default=max_flops, help="absolute MFLOPs limit")
    group.add_argument("--max-params", type=float, default=None, help="absolute M params limit")
    group.add_argument("--comparison-model", default=None, choices=sorted(COMPARISON_MODELS),
                       help="the reference of --flop-max, --param-max and "
                            "--normalised-score-max")
    group.add_argument("--flop-max", type=float, default=None,
                       help="FLOPs limit as a multiple of the comparison model's")
    group.add_argument("--param-max", type=float, default=None,
                       help="params limit as a multiple of the comparison model's")
    group.add_argument("--normalised-score-max", type=float, default=None,
                       help="limit of 0.5 F/F_ref + 0.5 P/P_ref (1.0 = the comparison model)")


_PROTOCOL_HELP = {"epochs": "stand-alone runs' epochs",
                  "lr": "stand-alone runs' learning rate (cosine schedule)",
                  "batch-size": "stand-alone runs' batch size (images)",
                  "warmup-epochs": "stand-alone runs' linear warm-up (epochs)",
                  "wd": "stand-alone runs' weight decay (none on BN and biases)"}


def add_protocol_arguments(group, defaults, prefix="--"):
    """The stand-alone recipe's flags (``<prefix>epochs``, ``lr``, ``batch-size``,
    ``warmup-epochs``, ``wd``, ``optimizer``), their defaults from the protocol ``defaults``."""
    for name, kind in (("epochs", int), ("lr", float), ("batch-size", int),
                       ("warmup-epochs", int), ("wd", float)):
        group.add_argument(prefix + name, type=kind,
                           default=getattr(defaults, name.replace("-", "_")),
                           help=_PROTOCOL_HELP[name])
    group.add_argument(prefix + "optimizer", default=defaults.optimizer, choices=OPTIMIZERS,
                       help="stand-alone runs' optimizer")


def add_standalone_arguments(parser):
    """The stand-alone protocol's flag group of the ranking and winner checks."""
    d = StandaloneProtocol()
    g = parser.add_argument_group("stand-alone protocol (default: digits, 32 px; the ranking's "
                                  "ground truth: validation top-1 after the last epoch)")
    g.add_argument("--protocol-from", default=None, metavar="TABLE",
                   help="train with the protocol of this stored table (its data set, images, "
                        "epochs, lr, ...); the --standalone-* flags below are then ignored "
                        "except --standalone-seeds")
    add_protocol_arguments(g, d, prefix="--standalone-")
    g.add_argument("--standalone-no-augment", action="store_true",
                   help="train without the digits shift augmentation")
    g.add_argument("--standalone-seeds", default=",".join(str(s) for s in d.seeds),
                   help="comma-separated seeds; the accuracy is their mean")
    g.add_argument("--cache-file", default=None,
                   help="finished stand-alone runs (default: output-dir/standalone_cache.json)")
    g.add_argument("--max-batches-per-epoch", type=int, default=0, help=argparse.SUPPRESS)
    return g


def protocol_from_args(args):
    """:class:`~oneshot_nas.ranking.StandaloneProtocol` from the flags of
    :func:`add_standalone_arguments`; ValueError naming a bad flag."""
    text = args.standalone_seeds              # None: the command picks its own default later
    try:
        seeds = tuple(StandaloneProtocol().seeds) if text is None else \
            tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        raise ValueError("--standalone-seeds must be comma-separated integers, got %r"
                         % text) from None
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
