"""``python -m oneshot_nas.cli.export_onnx`` (``oneshot-export-onnx``): a fixed subnet or an
exported symbol to ONNX, checked against MXNet with onnxruntime.

    python -m oneshot_nas.cli.export_onnx --symbol out/ShuffleNas_fixArch-symbol.json
    python -m oneshot_nas.cli.export_onnx --model OneShot-S+ --params net.params --fold-bn

The model accepts any batch size and image size. After writing it the command runs it with
onnxruntime and the float32 MXNet graph on the same random images at every ``--check-batch-
sizes`` x ``--check-sizes`` and prints the largest difference relative to the output's scale;
above ``--tolerance`` it exits with status 1. A ``<output>-deploy.json`` (preprocessing and
class names for ``predict --backend onnxruntime``) is copied from beside the symbol when there
is one, else written from the flags.
"""
import argparse
import json
import logging
import os
import sys

from ..deploy import (DeployError, DeployMeta, build_subnet, fold_batchnorm, graph_block,
                      load_graph, net_to_graph, read_meta, write_meta)
from ..deploy.onnx_export import DEFAULT_OPSET, compare_with_mxnet, export_onnx, onnx_session
from ..records import current_command
from .common import OneLineParser, add_subnet_arguments, command, new_parser, run_parsed

__all__ = ["build_parser", "run", "main"]

PROG = "export_onnx"
logger = logging.getLogger(__name__)


def _ints(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r"
                                         % text) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, got %r" % text)
    return values


def build_parser(prog=PROG):
    p = new_parser("Export a fixed subnet (or an exported symbol) to ONNX and check it against "
                   "MXNet with onnxruntime.", prog, OneLineParser)
    m = p.add_argument_group("subnet (as for quantize)")
    m.add_argument("--symbol", default=None,
                   help="an exported float32 -symbol.json (its -0000.params beside it, or "
                        "--params)")
    add_subnet_arguments(m, "channel shuffle of a --model graph")
    m.add_argument("--random-weights", action="store_true",
                   help="--model without --params: random weights (tests, speed)")
    e = p.add_argument_group("export")
    e.add_argument("--output", default=None,
                   help="the .onnx file (default: beside the symbol or params, named after "
                        "them)")
    e.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (12 or 13)")
    e.add_argument("--fold-bn", action="store_true",
                   help="fold BatchNorm into the convolutions before exporting")
    e.add_argument("--input-size", type=int, default=None,
                   help="image size recorded for prediction (default: the symbol's "
                        "-deploy.json, else 224)")
    c = p.add_argument_group("check against MXNet")
    c.add_argument("--no-check", dest="check", action="store_false",
                   help="only write the model (onnx.checker still runs)")
    c.add_argument("--check-batch-sizes", type=_ints, default=[1, 7],
                   help="comma-separated batch sizes run through both runtimes")
    c.add_argument("--check-sizes", type=_ints, default=[32, 64], help="image sizes, px")
    c.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest accepted max|onnx - mxnet| / max|mxnet|")
    c.add_argument("--json", action="store_true", help="also print a JSON summary line")
    return p


def _load(args):
    """``(symbol, arg_params, aux_params, default output prefix, meta or None, provenance)``."""
    if args.symbol is not None:
        if args.model or args.block_choices:
            raise DeployError("--symbol replaces --model / --block-choices; pass one of them")
        base = args.symbol[:-len("-symbol.json")] if args.symbol.endswith("-symbol.json") \
            else os.path.splitext(args.symbol)[0]
        params = args.params or base + "-0000.params"
        symbol, arg_params, aux_params = load_graph(args.symbol, params)
        return symbol, arg_params, aux_params, base, read_meta(base), dict(symbol=args.symbol)
    if args.model is None and not args.block_choices:
        raise DeployError("give the subnet: --symbol FILE, or --model NAME (or --block-choices "
                          "/ --channel-choices) with --params FILE")
    if args.params is None and not args.random_weights:
        raise DeployError("no trained weights: pass --params FILE (or --random-weights)")
    net = build_subnet(args.model, args.block_choices, args.channel_choices, args.params,
                       channels_layout=args.channels_layout, use_se=args.use_se,
                       last_conv_after_pooling=args.last_conv_after_pooling,
                       classes=args.classes, input_size=args.input_size or 224,
                       shuffle_method=args.shuffle_method)
    symbol, arg_params, aux_params = net_to_graph(net)
    name = args.model or "ShuffleNas_fixArch"
    folder = os.path.dirname(os.path.abspath(args.params)) if args.params else os.getcwd()
    provenance = dict(model=name, architecture=net.architecture.to_json(), config=net.config)
    return symbol, arg_params, aux_params, os.path.join(folder, name), None, provenance


def run(args):
    """Export (and check); returns ``(output path, check rows)``."""
    if args.tolerance <= 0:
        raise DeployError("--tolerance must be > 0, got %g" % args.tolerance)
    if args.input_size is not None and args.input_size < 1:
        raise DeployError("--input-size must be >= 1, got %d" % args.input_size)
    symbol, arg_params, aux_params, base, meta, provenance = _load(args)
    if args.fold_bn:
        symbol, arg_params, aux_params = fold_batchnorm(symbol, arg_params, aux_params)
        base += "-folded"
    output = args.output or base + ".onnx"
    meta = meta or DeployMeta()
    if args.input_size is not None:
        meta["input_size"] = args.input_size
    if meta.get("command"):
        meta["source_command"] = meta["command"]        # what wrote the graph exported here
    meta.update(onnx_opset=args.opset, folded_bn=bool(args.fold_bn), command=current_command(),
                **provenance)
    size = int(meta["input_size"])
    export_onnx(symbol, arg_params, aux_params, output, opset=args.opset, input_size=size,
                metadata={"oneshot_nas": dict(meta)})
    meta_file = write_meta(output, meta)
    print("wrote %s (opset %d, %.1f MB; onnx.checker passed) and %s"
          % (output, args.opset, os.path.getsize(output) / 2.0 ** 20, meta_file))
    if not args.check:
        return output, []
    rows = compare_with_mxnet(onnx_session(output), graph_block(symbol, arg_params, aux_params),
                              args.check_batch_sizes, args.check_sizes)
    for row in rows:
        print("onnxruntime vs MXNet, batch %d, %d px: max relative difference %.2e, top-1 "
              "agrees on %d/%d" % (row["batch"], row["size"], row["relative"],
                                   round(row["top1_agree"] * row["batch"]), row["batch"]))
    return output, rows


@command(PROG)
def main(argv=None):
    """Run the command line; returns the exit code (0; 1 when the check fails; 2 for bad
    input)."""
    code, done = run_parsed(build_parser(), argv, lambda args: (args,) + run(args))
    if done is None:
        return code
    args, output, rows = done
    worst = max((row["relative"] for row in rows), default=0.0)
    passed = worst <= args.tolerance
    if rows:
        print("check %s: largest relative difference %.2e %s tolerance %.0e"
              % ("passed" if passed else "FAILED", worst, "<=" if passed else ">",
                 args.tolerance))
    if args.json:
        print(json.dumps({"onnx": output, "opset": args.opset, "checked": bool(rows),
                          "passed": passed, "max_relative": worst, "checks": rows}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
