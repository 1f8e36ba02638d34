"""onnxruntime against MXNet on this CPU: a fixed subnet as MXNet float32 (hybridized, and
MKLDNN-fused), MXNet int8, and its ONNX export run by onnxruntime, in one run with interleaved
rounds, at 224 px and 32 px.

    python bench/bench_onnx.py                          # OneShot-S+, batch 32
    python bench/bench_onnx.py --output docs/bench_onnx.md

onnxruntime variants: the exported model as shipped (dynamic batch and image size, the channel
shuffle's reshape computed from ``Shape`` at run time); the same model with its input shape
fixed, so that onnxruntime folds those shape computations (the difference is the cost of the
dynamic reshape); and the subnet built with the shuffle as a 1x1 permutation convolution (the
alternative that needs no reshape at all). Weights are random: speed does not depend on them.
"""
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import mxnet as mx

from bench_common import bench_parser, command_line, publish

from oneshot_nas.machine import cpu_name


def _load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _fixed_input(path, out_path, batch, size):
    import onnx
    model = onnx.load(path)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (batch, 3, size, size)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    onnx.save(model, out_path)
    return out_path


def build_variants(model, input_size, batch_size, seed, folder):
    """{name: callable(numpy batch)}; MXNet fp32 hybridized first (the baseline)."""
    from oneshot_nas.deploy import (build_subnet, calibration_iter, export_onnx, fuse_graph,
                                    graph_block, net_to_graph, onnx_session, quantize_graph)
    from oneshot_nas.deploy.onnx_export import run_onnx
    mx.random.seed(seed)
    net = build_subnet(model, input_size=input_size)
    net.hybridize(static_alloc=True, static_shape=True)
    graph = net_to_graph(net)
    rng = np.random.RandomState(seed)
    calib = [rng.uniform(-1, 1, (batch_size, 3, input_size, input_size)).astype("float32")]
    calib_iter, _ = calibration_iter(calib, 1)
    blocks = {
        "MXNet fp32 hybridized": net,
        "MXNet fp32 MKLDNN-fused": graph_block(fuse_graph(graph[0]), *graph[1:]),
        "MXNet int8 (naive)": graph_block(*quantize_graph(*graph, calib_mode="naive",
                                                         calib_data=calib_iter)),
    }
    variants = {name: (lambda x, b=block: b(mx.nd.array(x)).wait_to_read())
                for name, block in blocks.items()}
    dynamic = os.path.join(folder, "dynamic.onnx")
    export_onnx(*graph, dynamic, input_size=input_size)
    conv_net = build_subnet(model, input_size=input_size, shuffle_method="conv")
    conv = os.path.join(folder, "conv.onnx")
    export_onnx(*net_to_graph(conv_net), conv, input_size=input_size)
    for name, path in (("onnxruntime fp32 (shipped: dynamic shapes)", dynamic),
                       ("onnxruntime fp32, input shape fixed (shape ops folded)",
                        _fixed_input(dynamic, os.path.join(folder, "fixed.onnx"), batch_size,
                                     input_size)),
                       ("onnxruntime fp32, shuffle as 1x1 conv", conv)):
        session = onnx_session(path)
        variants[name] = (lambda x, s=session: run_onnx(s, x))
    return variants


def _time(call, data, min_seconds):
    calls, start = 0, time.perf_counter()
    while True:
        call(data)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def run(variants, input_size, batch_size, rounds, min_seconds):
    """Interleaved timing: {name: [img/s per round]}, load averages."""
    rng = np.random.RandomState(1)
    batch = rng.uniform(-1, 1, (batch_size, 3, input_size, input_size)).astype("float32")
    for call in variants.values():           # warm-up: graph build, primitives, allocations
        call(batch)
        call(batch)
    speed = {name: [] for name in variants}
    loads = []
    for _ in range(rounds):
        loads.append(_load_average())
        for name, call in variants.items():
            speed[name].append(batch_size / _time(call, batch, min_seconds))
    return speed, loads


def markdown(results, args):
    import onnxruntime
    lines = [
        "## onnxruntime vs MXNet (bench/bench_onnx.py)",
        "",
        "%s, random weights, batch %d; mxnet %s (MKLDNN), onnxruntime %s (CPU provider, "
        "default threads), %s, %d cores; %d interleaved rounds of >= %.1f s per variant, "
        "medians; ratio = median over rounds of the variant's img/s over MXNet fp32 "
        "hybridized in the same round." % (args.model, args.batch_size, mx.__version__,
                                           onnxruntime.__version__, cpu_name(),
                                           os.cpu_count() or 0, args.rounds, args.min_seconds),
        "",
        "| input | variant | img/s | vs MXNet fp32 | min-max img/s |",
        "|---|---|---:|---:|---:|",
    ]
    load_text = []
    for size, (speed, loads) in results:
        names = list(speed)
        base = speed[names[0]]
        for name in names:
            tput = speed[name]
            ratio = statistics.median([t / b for t, b in zip(tput, base)])
            lines.append("| %d px | %s | %.1f | %.2fx | %.1f-%.1f |"
                         % (size, name, statistics.median(tput), ratio, min(tput), max(tput)))
        load_text.append("%d px %.2f-%.2f" % (size, min(loads), max(loads)))
    lines += ["", "1-minute load average during the run: %s." % ", ".join(load_text)]
    lines.append(command_line("bench_onnx.py", args.argv))
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    p = bench_parser(__doc__, model="OneShot-S+")
    p.add_argument("--input-sizes", default="224,32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the markdown section to this file")
    args = p.parse_args(argv)
    args.argv = argv
    import logging
    logging.basicConfig(level=logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size in [int(s) for s in args.input_sizes.split(",")]:
            variants = build_variants(args.model, size, args.batch_size, args.seed, folder)
            results.append((size, run(variants, size, args.batch_size, args.rounds,
                                      args.min_seconds)))
    text = markdown(results, args)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
