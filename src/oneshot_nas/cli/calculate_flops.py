"""``calculate_flops.py``: FLOPs / params of an exported subnet symbol (docs/design.md,
sections 5 and 6).

Examples::

    python calculate_flops.py -s model-symbol.json -ds data,1,3,224,224 -norelubn
    python calculate_flops.py --model OneShot-S+ -norelubn --json
    python calculate_flops.py --block-choices 0,0,3,... --channel-choices 6,5,3,... --use-se
    python calculate_flops.py --model OneShot-S+ --micronet --micronet-csv profile.csv
"""
import json
import os
import sys
import tempfile

from ..models.zoo import PRESETS
from ..profiling import count_symbol, load_symbol, micronet_profile, parse_data_shapes
from ..profiling.symbolic import build_symbol
from ..search_space import Architecture, CHANNEL_LAYOUTS
from .common import OneLineParser, add_switches, command, new_parser, run_parsed

__all__ = ["main", "build_parser"]

PROG = "calculate_flops.py"
DEFAULT_MODEL = "OneShot-S+"


def build_parser():
    """The argument parser (flags: docs/design.md, section 6)."""
    parser = new_parser("FLOPs and parameters of a subnet symbol graph, counted by the rules of "
                        "docs/design.md (section 5); optionally its MicroNet-challenge profile "
                        "and scores.", prog=PROG, parser_class=OneLineParser)
    graph = parser.add_argument_group("graph to count (an exported symbol, or a model built "
                                      "and exported into a temporary directory)")
    graph.add_argument("-s", "--symbol-path", default=None,
                       help="exported '<prefix>-symbol.json' (or the export prefix)")
    graph.add_argument("-ds", "--data-shapes", nargs="+", action="extend", default=None,
                       metavar="NAME,D0,D1,...",
                       help="input shapes, e.g. data,1,3,224,224; several inputs as several "
                            "items (default: data,1,3,S,S with S = --input-size)")
    model = parser.add_argument_group("model (when no --symbol-path; default %s)" % DEFAULT_MODEL)
    model.add_argument("--model", default=None, choices=sorted(PRESETS),
                       help="a preset subnet")
    model.add_argument("--block-choices", default=None,
                       help="20 block choices, e.g. 0,0,3,1,... (ShuffleNas_fixArch)")
    model.add_argument("--channel-choices", default=None,
                       help="20 channel choices, e.g. 6,5,3,5,... (default: scale 1.0)")
    model.add_argument("--channels-layout", default=None, choices=sorted(CHANNEL_LAYOUTS),
                       help="stage widths (default OneShot)")
    model.add_argument("--use-se", action="store_true", default=None,
                       help="SE modules and hard-swish (default: the preset's setting)")
    model.add_argument("--last-conv-after-pooling", action="store_true", default=None,
                       help="MobileNetV3-style tail (default: the preset's setting)")
    model.add_argument("--input-size", type=int, default=None,
                       help="input resolution (default 224; with --symbol-path it sets the "
                            "default data shape)")
    model.add_argument("--classes", type=int, default=None,
                       help="number of classes (default 1000)")
    count = parser.add_argument_group("counting")
    count.add_argument("-norelubn", "--no-relu-bn", dest="norelubn", action="store_true",
                       help="do not count ReLU and BatchNorm (the convention of every FLOPs "
                            "constraint)")
    out = parser.add_argument_group("output")
    add_switches(
        out, ("--per-layer", "print a per-layer table"),
        ("--json", "print one JSON object on the last line (flops_m, params_m, params...)"),
        ("--micronet", "print the MicroNet op-by-op profile (markdown) and scores"),
        ("--micronet-detailed", "one MicroNet row per op instead of per choice block"))
    out.add_argument("--micronet-csv", default=None, metavar="FILE",
                     help="also write the MicroNet table as CSV")
    out.add_argument("--micronet-markdown", default=None, metavar="FILE",
                     help="also write the MicroNet table and scores as markdown")
    out.add_argument("--count-se-scale", action="store_true",
                     help="MicroNet: count the SE gate multiply (the reference profile does not)")
    return parser


def _model_from_args(args):
    """(description, architecture, config) of the model the flags describe."""
    if args.block_choices is not None and args.model is not None:
        raise ValueError("give either --model or --block-choices, not both")
    if args.block_choices is not None:
        name = "ShuffleNas_fixArch"
        arch = Architecture.parse(args.block_choices, args.channel_choices)
        defaults = dict(use_se=False, last_conv_after_pooling=False)
    else:
        if args.channel_choices is not None:
            raise ValueError("--channel-choices needs --block-choices")
        name = args.model or DEFAULT_MODEL
        (blocks, channels), defaults = PRESETS[name]
        arch = Architecture.parse(blocks, channels)
    config = dict(channels_layout=args.channels_layout or "OneShot",
                  use_se=defaults["use_se"] if args.use_se is None else args.use_se,
                  last_conv_after_pooling=(defaults["last_conv_after_pooling"]
                                           if args.last_conv_after_pooling is None
                                           else args.last_conv_after_pooling),
                  input_size=args.input_size or 224, classes=args.classes or 1000)
    return name, arch, config


def _describe(name, arch, config):
    extras = [config["channels_layout"] + " layout"]
    if config["use_se"]:
        extras.append("SE")
    if config["last_conv_after_pooling"]:
        extras.append("last conv after pooling")
    return "%s %s (%s)" % (name, arch, ", ".join(extras))


def _run(args):
    for flag, value in (("--input-size", args.input_size), ("--classes", args.classes)):
        if value is not None and value <= 0:
            raise ValueError("%s must be a positive integer, got %d" % (flag, value))
    model_flags = (args.model, args.block_choices, args.channel_choices, args.use_se,
                   args.last_conv_after_pooling, args.channels_layout, args.classes)
    if args.symbol_path is not None and any(f is not None for f in model_flags):
        raise ValueError("--symbol-path counts an exported graph; model flags (--model, "
                         "--block-choices, --use-se, --classes, ...) cannot be combined with it")
    if args.data_shapes and args.input_size is not None:
        raise ValueError("--input-size and --data-shapes both set the input shape; give one")
    if args.data_shapes:
        shapes = parse_data_shapes(args.data_shapes)
    else:
        size = args.input_size or 224
        shapes = {"data": (1, 3, size, size)}

    if args.symbol_path is not None:
        source = args.symbol_path
        symbol = load_symbol(args.symbol_path)
    else:
        name, arch, config = _model_from_args(args)
        source = _describe(name, arch, config)
        # Build the subnet and export its graph the way ShuffleNasOneShotFix.export writes it;
        # the counters read the graph only, so no weights are initialised or saved.
        with tempfile.TemporaryDirectory(prefix="oneshot_nas_flops_") as tmp:
            path = os.path.join(tmp, "subnet-symbol.json")
            build_symbol(arch, **config).save(path)
            symbol = load_symbol(path)

    count = count_symbol(symbol, shapes, relu_bn=not args.norelubn)
    shape_text = ", ".join("%s %s" % (k, v) for k, v in shapes.items())
    print("graph: %s" % source)
    print("inputs: %s" % shape_text)
    print("FLOPs (%s): %.2f M (%d)" % ("ReLU and BN excluded" if args.norelubn
                                       else "ReLU and BN included", count.mflops, count.flops))
    print("params: %.4f M (%d)" % (count.mparams, count.params))
    if args.per_layer:
        print()
        print(count.per_layer_table())
    result = count.to_dict()
    result["source"] = source
    if args.micronet or args.micronet_csv or args.micronet_markdown:
        profile = micronet_profile(symbol, shapes, count_se_scale=args.count_se_scale)
        markdown = profile.to_markdown(detailed=args.micronet_detailed)
        if args.micronet:
            print()
            print(markdown)
        if args.micronet_csv:
            with open(args.micronet_csv, "w") as f:
                f.write(profile.to_csv(detailed=args.micronet_detailed))
        if args.micronet_markdown:
            with open(args.micronet_markdown, "w") as f:
                f.write(markdown + "\n")
        result["micronet"] = profile.to_dict()
    if args.json:
        print(json.dumps(result, sort_keys=True))


@command(PROG)
def main(argv=None):
    """Run the command line; returns the exit code (0, or 2 for bad input).

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).
    """
    return run_parsed(build_parser(), argv, _run)[0]

if __name__ == "__main__":
    sys.exit(main())
