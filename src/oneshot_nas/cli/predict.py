"""``python -m oneshot_nas.cli.predict``: top-5 classes of image files with an exported
(float32 or int8) subnet, or its ONNX model run by onnxruntime, preprocessed like the
validation split.

    python -m oneshot_nas.cli.predict --model-prefix out/OneShot-S+-quantized-naive img.png dir/
    python -m oneshot_nas.cli.predict --onnx out/OneShot-S+.onnx img.png   # --backend onnxruntime

The preprocessing and class names come from ``<prefix>-deploy.json`` (written by the
quantization and ONNX export CLIs); without it, or to override it, use ``--input-size``, ``--crop-ratio``,
``--style``, ``--mean``, ``--std`` and ``--synset``.
"""
import argparse
import json
import logging
import os
import sys

import mxnet as mx

from ..deploy import (DeployError, DeployMeta, OnnxPredictor, collect_images, graph_block,
                      load_graph, predict_topk, preprocess, read_meta)
from .common import OneLineParser, command, new_parser, run_parsed
from .errors import error_line

__all__ = ["build_parser", "main"]

PROG = "predict"
logger = logging.getLogger(__name__)


def _floats(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("expected three comma-separated numbers, got %r"
                                         % text) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError("expected three comma-separated numbers, got %r"
                                         % text)
    return values


def build_parser(prog=PROG):
    p = new_parser("Top-k classes of images with an exported float32 or int8 subnet, or its "
                   "ONNX model (onnxruntime).", prog, OneLineParser)
    p.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    m = p.add_argument_group("model")
    m.add_argument("--model-prefix", default=None,
                   help="PREFIX of PREFIX-symbol.json / PREFIX-0000.params")
    m.add_argument("--symbol", default=None, help="-symbol.json (instead of --model-prefix)")
    m.add_argument("--params", default=None, help="-0000.params (with --symbol)")
    m.add_argument("--onnx", default=None, help="an ONNX model (export_onnx); implies "
                   "--backend onnxruntime")
    m.add_argument("--backend", default=None, choices=["mxnet", "onnxruntime"],
                   help="mxnet runs the symbol; onnxruntime runs --onnx, or PREFIX.onnx with "
                        "--model-prefix (default: onnxruntime with --onnx, else mxnet)")
    pre = p.add_argument_group("preprocessing (default: <prefix>-deploy.json, else ImageNet)")
    pre.add_argument("--input-size", type=int, default=None,
                       help="image size (px; default: the model's deploy record)")
    pre.add_argument("--crop-ratio", type=float, default=None,
                       help="centre crop share (default: the model's deploy record)")
    pre.add_argument("--style", default=None, choices=["imagenet", "digits", "fashion-mnist"],
                     help="validation pipeline: resize + centre crop, digits (resize), or "
                          "fashion-mnist (zero-pad 28 -> 32 px)")
    pre.add_argument("--mean", type=_floats, default=None, help="R,G,B on the 0..255 scale")
    pre.add_argument("--std", type=_floats, default=None, help="R,G,B on the 0..255 scale")
    pre.add_argument("--synset", default=None, help="text file with one class name per line")
    o = p.add_argument_group("output")
    o.add_argument("--topk", type=int, default=5, help="classes printed per image")
    o.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    o.add_argument("--json", action="store_true", help="one JSON object per image")
    return p


def _resolve_onnx(args):
    """``(onnx file, meta prefix)`` for ``--backend onnxruntime``."""
    if args.symbol or args.params:
        raise DeployError("--symbol / --params are MXNet files; with --backend onnxruntime "
                          "pass --onnx FILE (or --model-prefix PREFIX for PREFIX.onnx)")
    if args.onnx:
        if args.model_prefix:
            raise DeployError("pass --onnx or --model-prefix, not both")
        return args.onnx, args.onnx
    if not args.model_prefix:
        raise DeployError("no model: pass --onnx FILE or --model-prefix PREFIX")
    prefix = args.model_prefix
    for suffix in ("-symbol.json", ".onnx"):
        if prefix.endswith(suffix):
            prefix = prefix[:-len(suffix)]
    return prefix + ".onnx", prefix


def _resolve_files(args):
    if args.model_prefix:
        if args.symbol or args.params:
            raise DeployError("pass --model-prefix or --symbol/--params, not both")
        prefix = args.model_prefix
        if prefix.endswith("-symbol.json"):
            prefix = prefix[:-len("-symbol.json")]
        return prefix + "-symbol.json", prefix + "-0000.params", prefix
    if not args.symbol:
        raise DeployError("no model: pass --model-prefix PREFIX or --symbol FILE")
    params = args.params
    if params is None:
        if not args.symbol.endswith("-symbol.json"):
            raise DeployError("pass --params with --symbol %s" % args.symbol)
        params = args.symbol[:-len("-symbol.json")] + "-0000.params"
    return args.symbol, params, args.symbol


def _class_names(args, meta, num_classes):
    if args.synset:
        if not os.path.isfile(args.synset):
            raise DeployError("synset file %s does not exist" % args.synset)
        with open(args.synset) as handle:
            names = [line.strip() for line in handle if line.strip()]
    else:
        names = list(meta.get("classes") or [])
    if names and len(names) != num_classes:
        raise DeployError("%d class names for a model with %d classes"
                          % (len(names), num_classes))
    return names


def _mxnet_block(symbol_file, params_file, size):
    symbol, arg_params, aux_params = load_graph(symbol_file, params_file)
    try:
        # with the saved shapes, so that an input size the weights do not fit fails here
        known = {name: value.shape for name, value in dict(arg_params, **aux_params).items()
                 if name in symbol.list_inputs()}
        num_classes = symbol.infer_shape(data=(1, 3, size, size), **known)[1][0][1]
    except mx.base.MXNetError as err:
        raise DeployError("%s cannot run on %dx%d images (%s); check --input-size"
                          % (symbol_file, size, size, error_line(err))) from None
    return graph_block(symbol, arg_params, aux_params), num_classes


def _onnx_classes(predictor, model_file, size):
    try:
        return int(predictor(mx.nd.zeros((1, 3, size, size))).shape[1])
    except Exception as err:  # onnxruntime's own error types
        raise DeployError("%s cannot run on %dx%d images (%s); check --input-size"
                          % (model_file, size, size, error_line(err))) from None


def _stored_meta(meta_prefix, onnx_predictor=None):
    """The model's record: its ``-deploy.json``, else (an ONNX model, already opened) the record
    the export put into the model's metadata; None without either."""
    meta = read_meta(meta_prefix)
    if meta is None and onnx_predictor is not None:
        props = onnx_predictor.metadata()
        if "oneshot_nas" in props:
            logger.info("preprocessing from the record inside %s", onnx_predictor.path)
            return DeployMeta(**json.loads(props["oneshot_nas"]))
    return meta


def _warn_without_record(meta_prefix, onnx_file):
    logger.warning("no record of the model's preprocessing (%s-deploy.json%s): ImageNet's "
                   "(224 px, ImageNet mean and std) unless --input-size / --style / --mean / "
                   "--std say otherwise", meta_prefix,
                   " or metadata in the ONNX file" if onnx_file else "")


def run(args):
    """Predict and print; returns the list of ``(path, [(class, name, probability), ...])``."""
    if args.topk < 1:
        raise DeployError("--topk must be >= 1, got %d" % args.topk)
    if args.batch_size < 1:
        raise DeployError("--batch-size must be >= 1, got %d" % args.batch_size)
    if args.input_size is not None and args.input_size < 1:
        raise DeployError("--input-size must be >= 1, got %d" % args.input_size)
    if args.crop_ratio is not None and not 0 < args.crop_ratio <= 1:
        raise DeployError("--crop-ratio must be in (0, 1], got %g" % args.crop_ratio)
    backend = args.backend or ("onnxruntime" if args.onnx else "mxnet")
    if backend == "mxnet" and args.onnx:
        raise DeployError("--onnx needs --backend onnxruntime")
    if backend == "onnxruntime":
        model_file, meta_prefix = _resolve_onnx(args)
    else:
        symbol_file, params_file, meta_prefix = _resolve_files(args)
    onnx_file = model_file if backend == "onnxruntime" else None
    onnx_predictor = OnnxPredictor(model_file) if onnx_file else None   # opened once
    stored = _stored_meta(meta_prefix, onnx_predictor)
    meta = stored or DeployMeta()
    overrides = dict(input_size=args.input_size, crop_ratio=args.crop_ratio, style=args.style,
                     mean=args.mean, std=args.std)
    meta.update({k: v for k, v in overrides.items() if v is not None})
    size = int(meta["input_size"])
    if backend == "onnxruntime":
        block = onnx_predictor
        num_classes = _onnx_classes(block, model_file, size)
    else:
        block, num_classes = _mxnet_block(symbol_file, params_file, size)
    names = _class_names(args, meta, num_classes)
    paths = collect_images(args.images)
    if stored is None:                  # said once the model and the images are there
        _warn_without_record(meta_prefix, onnx_file)
    data = preprocess(paths, meta)
    top = predict_topk(block, data, args.topk, args.batch_size)
    rows = []
    for path, pairs in zip(paths, top):
        labelled = [(c, names[c] if names else str(c), p) for c, p in pairs]
        rows.append((path, labelled))
        if args.json:
            print(json.dumps({"image": path, "top": [{"class": c, "name": n, "prob": round(p, 6)}
                                                      for c, n, p in labelled]}))
        else:
            print("%s: %s" % (path, ", ".join("%s (%.3f)" % (n, p) for _, n, p in labelled)))
    return rows


@command(PROG)
def main(argv=None):
    """Run the command line; returns the exit code (0, or 2 for bad input)."""
    return run_parsed(build_parser(), argv, run)[0]


if __name__ == "__main__":
    sys.exit(main())
