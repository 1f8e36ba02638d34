"""Deployment speed of a fixed subnet on this CPU: plain hybridized float32, MKLDNN-fused
float32 (as ``fuse_graph`` makes it, and MXNet's stock partitioning that also fuses ReLU),
BN-folded float32 and int8, measured in one run with interleaved rounds.

    python bench/bench_deploy.py                       # OneShot-S+, 224 px, batch 32
    python bench/bench_deploy.py --output /tmp/bench_deploy.md

Every round times each variant once (``--min-seconds`` of forward passes each, after warm-up),
in turn, so that a load change on the machine hits all variants alike; the table reports the
median over ``--rounds`` rounds and the ratio to the plain hybridized float32 subnet
(``net.hybridize(static_alloc=True, static_shape=True)``, the baseline of the acceptance test).
Weights are random (speed does not depend on them); the int8 graph is calibrated (naive) on
random images.
"""
import os
import statistics
import sys

import numpy as np
import mxnet as mx

from bench_common import bench_parser, command_line, publish

from oneshot_nas.deploy.evaluate import seconds_per_call
from oneshot_nas.machine import cpu_name


def _load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def build_variants(model, input_size, batch_size, calib_mode, shuffle_method, seed):
    from oneshot_nas.deploy import (build_subnet, calibration_iter, fold_batchnorm,
                                    fuse_graph, graph_block, net_to_graph, quantize_graph)
    mx.random.seed(seed)
    net = build_subnet(model, input_size=input_size, shuffle_method=shuffle_method)
    net.hybridize(static_alloc=True, static_shape=True)
    graph = net_to_graph(net)
    folded = fold_batchnorm(*graph)
    rng = np.random.RandomState(seed)
    calib = [rng.uniform(-1, 1, (batch_size, 3, input_size, input_size)).astype("float32")]
    calib_iter, _ = calibration_iter(calib, 1)
    qgraph = quantize_graph(*graph, calib_mode=calib_mode, calib_data=calib_iter)
    return {
        "fp32 hybridized (plain)": net,
        "fp32 MKLDNN-fused (fuse_graph)": graph_block(fuse_graph(graph[0]), *graph[1:]),
        "fp32 MKLDNN-fused, ReLU fused too (stock)":
            graph_block(fuse_graph(graph[0], fuse_relu=True), *graph[1:]),
        "fp32 BN-folded": graph_block(*folded),
        "fp32 BN-folded + fused": graph_block(fuse_graph(folded[0]), *folded[1:]),
        "int8 (%s)" % calib_mode: graph_block(*qgraph),
    }


def run(variants, input_size, batch_size, rounds, min_seconds, progress=True):
    """Interleaved timing: {name: (img/s list, ms/image-at-batch-1 list)}."""
    rng = np.random.RandomState(1)
    batch = mx.nd.array(rng.uniform(-1, 1, (batch_size, 3, input_size, input_size)))
    single = batch[:1].copy()
    for block in variants.values():          # warm-up: graph build, MKLDNN primitives
        for data in (batch, single, batch):
            block(data).wait_to_read()
    speed = {name: ([], []) for name in variants}
    loads = []
    iterator = range(rounds)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="rounds", unit="round", leave=False)
    for _ in iterator:
        loads.append(_load_average())
        for name, block in variants.items():
            speed[name][0].append(batch_size / seconds_per_call(block, batch, min_seconds))
            speed[name][1].append(1000.0 * seconds_per_call(block, single, min_seconds / 2))
    return speed, loads


def markdown(speed, loads, args):
    names = list(speed)
    base = statistics.median(speed[names[0]][0])
    lines = [
        "## Deployment speed (bench/bench_deploy.py)",
        "",
        "%s at %d px, batch %d, random weights; mxnet %s (MKLDNN), %s, %d cores; %d interleaved "
        "rounds of >= %.1f s per variant, medians; 1-minute load average during the run "
        "%.2f-%.2f." % (args.model, args.input_size, args.batch_size, mx.__version__,
                        cpu_name(), os.cpu_count() or 0, args.rounds, args.min_seconds,
                        min(loads), max(loads)),
        "",
        "| variant | img/s (batch %d) | vs plain fp32 | per-round ratio (median) | "
        "min-max img/s | latency ms (batch 1) |" % args.batch_size,
        "|---|---:|---:|---:|---:|---:|",
    ]
    plain = speed[names[0]][0]
    for name in names:
        tput, lat = speed[name]
        med = statistics.median(tput)
        ratio = statistics.median([t / p for t, p in zip(tput, plain)])
        lines.append("| %s | %.1f | %.2fx | %.2fx | %.1f-%.1f | %.2f |"
                     % (name, med, med / base, ratio, min(tput), max(tput),
                        statistics.median(lat)))
    lines.append("")
    lines.append(command_line("bench_deploy.py", args.argv))
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    p = bench_parser(__doc__, model="OneShot-S+")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--calib-mode", default="naive", choices=["none", "naive", "entropy"])
    p.add_argument("--shuffle-method", default="reshape", choices=["reshape", "conv"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the markdown section to this file")
    args = p.parse_args(argv)
    args.argv = argv
    import logging
    logging.basicConfig(level=logging.WARNING)
    variants = build_variants(args.model, args.input_size, args.batch_size, args.calib_mode,
                              args.shuffle_method, args.seed)
    speed, loads = run(variants, args.input_size, args.batch_size, args.rounds,
                       args.min_seconds)
    text = markdown(speed, loads, args)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
