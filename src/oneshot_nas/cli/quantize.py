"""``python -m oneshot_nas.cli.quantize``: export, fuse, BN-fold and int8-quantize a trained
fixed subnet with MKLDNN, then optionally evaluate every variant (accuracy, speed, MicroNet).

The subnet is ``--model NAME`` (a preset, or ``ShuffleNas_fixArch`` with ``--block-choices`` /
``--channel-choices``) plus ``--params FILE`` of trained weights, or ``--symbol FILE`` with
``--params FILE`` of an exported pair. Outputs in ``--output-dir`` (default: beside the
params), all with a ``<prefix>-deploy.json`` of the preprocessing for ``predict``::

    <prefix>-symbol.json / -0000.params                      float32 graph
    <prefix>-fused-symbol.json / -0000.params                MKLDNN-fused float32 graph
    <prefix>-folded-symbol.json / -0000.params               BN folded into the convolutions
    <prefix>-quantized-<calib mode>-symbol.json / -0000.params
    <prefix>-quantized-<calib mode>-eval.json                with --eval / --speed
"""
import json
import logging
import os
import sys

from ..data import make_loaders
from ..deploy import (CALIB_MODES, FLOAT_OPS, QUANTIZED_DTYPES, SUPERNET_MODELS, DeployError,
                      DeployMeta, build_subnet, calibration_iter, evaluate_variants, meta_for_data,
                      fold_batchnorm, fuse_graph, load_graph, net_to_graph, quantize_graph,
                      quantized_prefix, results_json, results_table, save_graph, write_meta)
from ..data.factory import DATASETS, default_input_size
from ..profiling import micronet_profile
from .common import (OneLineParser, add_subnet_arguments, add_switches, cli_logging, command,
                     new_parser, parse_args)

__all__ = ["build_parser", "main"]

PROG = "quantize"
logger = logging.getLogger(__name__)


def build_parser(prog=PROG):
    p = new_parser("Export, fuse, BN-fold and int8-quantize a trained fixed subnet (MKLDNN), "
                   "and evaluate the deployed variants.", prog, OneLineParser)
    m = p.add_argument_group("subnet")
    add_subnet_arguments(m, "channel shuffle of the exported graph; 'conv' (a constant 1x1 "
                            "permutation convolution) quantizes with the convolutions")
    m.add_argument("--symbol", default=None, help="an exported -symbol.json instead of --model")
    m.add_argument("--random-weights", action="store_true",
                   help="no --params: random weights (speed measurements only)")

    d = p.add_argument_group("data (calibration: training split; evaluation: validation split)")
    d.add_argument("--dataset", default="imagenet", choices=DATASETS,
                   help="calibration and evaluation data")
    d.add_argument("--data-dir", default=None,
                   help="ImageNet-style folder with train/, val/; fashion-mnist: the folder of "
                        "its IDX files (default: Debian's)")
    d.add_argument("--use-rec", action="store_true", help="read --rec-* RecordIO files")
    d.add_argument("--rec-train", default=None, help="RecordIO training file (calibration)")
    d.add_argument("--rec-train-idx", default=None, help="its index file")
    d.add_argument("--rec-val", default=None, help="RecordIO validation file (--eval)")
    d.add_argument("--rec-val-idx", default=None, help="its index file")
    d.add_argument("--input-size", type=int, default=None,
                   help="default 32 for digits and fashion-mnist, else 224")
    d.add_argument("--crop-ratio", type=float, default=0.875,
                   help="validation centre crop share of the resized short side")
    d.add_argument("--batch-size", type=int, default=32, help="calibration / evaluation batch")
    d.add_argument("-j", "--num-data-workers", dest="num_workers", type=int, default=2,
                   help="data-loading worker processes")

    q = p.add_argument_group("quantization")
    q.add_argument("--calib-mode", default="naive",
                   help="one of: %s" % ", ".join(CALIB_MODES))
    q.add_argument("--num-calib-batches", type=int, default=10,
                   help="training batches used for calibration")
    q.add_argument("--exclude-first-conv", action="store_true",
                   help="keep the first convolution in float32")
    q.add_argument("--quantized-dtype", default="int8",
                   help="one of: %s ('auto' fails at inference on this architecture)"
                        % ", ".join(QUANTIZED_DTYPES))
    q.add_argument("--quantize-hswish", action="store_true",
                   help="also quantize the hard-swish multiply (costs accuracy)")
    q.add_argument("--no-quantize", dest="quantize", action="store_false",
                   help="only export / fuse / fold the float32 graph")

    e = p.add_argument_group("evaluation")
    add_switches(e, ("--eval", "top-1 / top-5 of every variant on the validation split"),
                 ("--speed", "throughput and batch-1 latency of every variant"))
    e.add_argument("--bench-batch-size", type=int, default=32,
                   help="batch of the speed measurement (images)")
    e.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    e.add_argument("--eval-json", default=None, help="default: <quantized prefix>-eval.json")

    o = p.add_argument_group("output")
    o.add_argument("--output-dir", default=None, help="default: the folder of --params")
    o.add_argument("--prefix", default=None,
                   help="file prefix (default: the model name or the symbol file's prefix)")
    o.add_argument("--logging-file", default=None, help="text log (default: none)")
    o.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")
    return p


def _check_args(args):
    if args.calib_mode not in CALIB_MODES:
        raise DeployError("unsupported --calib-mode %r; choose one of %s"
                          % (args.calib_mode, ", ".join(CALIB_MODES)))
    if args.quantized_dtype not in QUANTIZED_DTYPES:
        raise DeployError("unsupported --quantized-dtype %r; choose one of %s (int8 works)"
                          % (args.quantized_dtype, ", ".join(QUANTIZED_DTYPES)))
    if args.num_calib_batches < 1:
        raise DeployError("--num-calib-batches must be >= 1, got %d" % args.num_calib_batches)
    if args.model in SUPERNET_MODELS:
        raise DeployError("%s is the weight-sharing supernet, which has no static graph to "
                          "export or quantize; pass a fixed subnet (a preset such as "
                          "OneShot-S+, or ShuffleNas_fixArch with block and channel choices)"
                          % args.model)
    if args.symbol is None and args.model is None and not args.block_choices:
        raise DeployError("give the subnet: --model NAME (or --block-choices/--channel-choices) "
                          "with --params FILE, or --symbol FILE with --params FILE")
    if args.symbol is not None:
        if args.model or args.block_choices:
            raise DeployError("--symbol replaces --model / --block-choices; pass one of them")
        if args.shuffle_method != "reshape":
            raise DeployError("--shuffle-method conv rebuilds the subnet: use --model with "
                              "--params instead of --symbol")
    if args.params is None and args.symbol is not None:
        args.params = args.symbol[:-len("-symbol.json")] + "-0000.params" \
            if args.symbol.endswith("-symbol.json") else None
    if args.params is None and not args.random_weights:
        raise DeployError("no trained weights: pass --params FILE (or --random-weights for a "
                          "speed check)")
    if args.params is not None and not os.path.isfile(args.params):
        raise DeployError("params file %s does not exist" % args.params)
    if args.input_size is None:
        args.input_size = default_input_size(args.dataset)


def _load(args):
    """(symbol, arg_params, aux_params, prefix, description) of the requested subnet."""
    if args.symbol is not None:
        symbol, arg_params, aux_params = load_graph(args.symbol, args.params)
        base = os.path.basename(args.symbol)
        prefix = base[:-len("-symbol.json")] if base.endswith("-symbol.json") else \
            os.path.splitext(base)[0]
        return symbol, arg_params, aux_params, prefix, dict(symbol=args.symbol)
    kwargs = dict(channels_layout=args.channels_layout, use_se=args.use_se,
                  last_conv_after_pooling=args.last_conv_after_pooling, classes=args.classes,
                  input_size=args.input_size, shuffle_method=args.shuffle_method)
    net = build_subnet(args.model, args.block_choices, args.channel_choices, args.params,
                       **kwargs)
    symbol, arg_params, aux_params = net_to_graph(net)
    prefix = args.model or "ShuffleNas_fixArch"
    if args.shuffle_method != "reshape":
        prefix += "-shuffle%s" % args.shuffle_method
    info = dict(model=prefix, architecture=net.architecture.to_json(), config=net.config)
    return symbol, arg_params, aux_params, prefix, info


def _loaders(args, need_train, need_val):
    if not (need_train or need_val):
        return None, None, None
    train, val, info = make_loaders(
        dataset=args.dataset, data_dir=args.data_dir, use_rec=args.use_rec or None,
        rec_train=args.rec_train, rec_train_idx=args.rec_train_idx, rec_val=args.rec_val,
        rec_val_idx=args.rec_val_idx, batch_size=args.batch_size, num_workers=args.num_workers,
        input_size=args.input_size, crop_ratio=args.crop_ratio, augment=False,
        num_classes=args.classes if args.dataset == "synthetic" else None)
    return train, val, info


def _meta(args, info, provenance):
    return meta_for_data(args.dataset, info, args.input_size, args.crop_ratio, **provenance)


def _micronet_scores(symbol, input_size):
    try:
        return micronet_profile(symbol, {"data": (1, 3, input_size, input_size)}).scores()
    except Exception as err:  # the profile is extra information; never fail the deployment for it
        logger.warning("MicroNet profile unavailable: %s", err)
        return None


def run(args):
    """Everything after argument checking; returns the evaluation results (or None)."""
    symbol, arg_params, aux_params, prefix, provenance = _load(args)
    prefix = args.prefix or prefix
    out_dir = args.output_dir or (os.path.dirname(os.path.abspath(args.params))
                                  if args.params else None)
    if out_dir is None:
        raise DeployError("pass --output-dir (there is no --params folder to write beside)")
    base = os.path.join(out_dir, prefix)
    need_calib = args.quantize and args.calib_mode != "none"
    train, val, info = _loaders(args, need_calib, args.eval)
    meta = _meta(args, info, provenance)

    written = []
    for suffix, graph in (("", (symbol, arg_params, aux_params)),
                          ("-fused", (fuse_graph(symbol), arg_params, aux_params)),
                          ("-folded", fold_batchnorm(symbol, arg_params, aux_params))):
        paths = save_graph(base + suffix, *graph)
        write_meta(base + suffix, meta)
        written.extend(paths)
    graphs = {"fp32": (symbol, arg_params, aux_params),
              "fp32-folded": fold_batchnorm(symbol, arg_params, aux_params)}
    qbase = None
    if args.quantize:
        calib = None
        if need_calib:
            calib, count = calibration_iter(train, args.num_calib_batches,
                                            progress=args.progress)
            logger.info("calibrating on %d training images", count)
        qgraph = quantize_graph(symbol, arg_params, aux_params, args.calib_mode, calib,
                                exclude_first_conv=args.exclude_first_conv,
                                quantized_dtype=args.quantized_dtype,
                                excluded_op_names=() if args.quantize_hswish else FLOAT_OPS)
        qbase = quantized_prefix(base, args.calib_mode, args.exclude_first_conv,
                                 args.quantized_dtype)
        written.extend(save_graph(qbase, *qgraph))
        write_meta(qbase, DeployMeta(**dict(meta, calib_mode=args.calib_mode,
                                            quantized_dtype=args.quantized_dtype,
                                            exclude_first_conv=args.exclude_first_conv)))
        graphs["int8"] = qgraph
    for path in written:
        print("wrote %s" % path)
    if not (args.eval or args.speed):
        return None

    variants = ["fp32", "fp32-fused", "fp32-folded", "float16"] + \
        (["int8"] if "int8" in graphs else [])
    results = evaluate_variants(graphs, args.input_size, val if args.eval else None,
                                variants=variants, speed=args.speed,
                                batch_size=args.bench_batch_size, repeats=args.repeats,
                                progress=args.progress)
    scores = _micronet_scores(symbol, args.input_size)
    print(results_table(results, args.bench_batch_size, scores))
    json_path = args.eval_json or (qbase or base) + "-eval.json"
    with open(json_path, "w") as handle:
        handle.write(results_json(results, prefix=prefix, input_size=args.input_size,
                                  dataset=args.dataset, calib_mode=args.calib_mode,
                                  num_calib_batches=args.num_calib_batches,
                                  bench_batch_size=args.bench_batch_size,
                                  micronet_scores=scores, **provenance))
    print("wrote %s" % json_path)
    return results


@command(PROG)
def main(argv=None):
    """Run the command line; returns the exit code (0, or 2 for bad input: DeployError,
    DataError, invalid architecture strings, unreadable or unwritable files, data MXNet cannot
    decode)."""
    args, code = parse_args(build_parser(), argv)
    if args is None:
        return code
    # Bad flags and files are reported before any logging starts: one line on stderr.
    _check_args(args)
    with cli_logging(args.logging_file):
        logger.info("settings: %s", json.dumps(vars(args), sort_keys=True))
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
