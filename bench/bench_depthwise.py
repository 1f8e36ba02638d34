"""Per-layer depthwise convolution: plain ``nn.Conv2D(groups=C)`` vs the layer kit's
``DepthwiseConv2D`` (kernel cropping + weight gradient as a depthwise forward), same run.

Every depthwise kernel / stride / map size of the search space at 32 px (batch 64) and 224 px
(batch 16), full width, forward and forward + backward, medians of ``--repeats`` runs; then the
oneDNN implementations each variant runs (``DNNL_VERBOSE=1`` in a child process).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import nn

from bench_common import write_section

from oneshot_nas.machine import describe_machine
from oneshot_nas.nn.depthwise import DepthwiseConv2D
from oneshot_nas.search_space import CHANNEL_LAYOUTS

# (input px, batch): the map size entering each stage's first (stride-2) block
SETTINGS = ((32, 64), (224, 16))


def cases(kernels=(3, 5, 7)):
    for px, batch in SETTINGS:
        size = px // 2                      # after the stride-2 stem
        for stage, channels in enumerate(CHANNEL_LAYOUTS["OneShot"]):
            for stride in (2, 1):
                h = size if stride == 2 else size // 2
                for k in kernels:
                    yield px, batch, stage, channels, h, k, stride
            size //= 2


def _layers(channels, k, stride):
    plain = nn.Conv2D(channels, k, strides=stride, padding=k // 2, groups=channels,
                      use_bias=False, in_channels=channels)
    fast = DepthwiseConv2D(channels, k, stride)
    for layer in (plain, fast):
        layer.initialize(mx.init.Normal(0.1))
    fast.weight.set_data(plain.weight.data())
    return plain, fast


def _time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    nd.waitall()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        nd.waitall()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def measure(layer, x, repeats):
    x = x.copy()
    x.attach_grad()

    def forward():
        layer(x)

    def forward_backward():
        with autograd.record():
            y = layer(x)
        y.backward()
    return _time(forward, repeats), _time(forward_backward, repeats)


def impl_names(channels, h, k, stride, batch, variant):
    """The oneDNN implementation of every convolution primitive run by one fwd + bwd step."""
    code = ("import sys; sys.argv=['x']; import bench_depthwise as b; "
            "b._one_step(%d, %d, %d, %d, %d, %r)" % (channels, h, k, stride, batch, variant))
    env = dict(os.environ, DNNL_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(",")
        if len(parts) > 6 and parts[1] == "exec" and parts[3] == "convolution":
            names.append("%s %s %.1f ms" % (parts[5], parts[4], float(parts[-1])))
    return names[-3:]                      # the last step's forward / backward primitives


def _one_step(channels, h, k, stride, batch, variant):
    plain, fast = _layers(channels, k, stride)
    layer = plain if variant == "plain" else fast
    x = nd.random.normal(shape=(batch, channels, h, h))
    x.attach_grad()
    for _ in range(2):
        with autograd.record():
            y = layer(x)
        y.backward()
        nd.waitall()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--output", help="write a markdown section to this file")
    args = p.parse_args(argv)
    rows = ["| input, batch | stage | channels | map | kernel | stride | plain fwd ms | fast fwd ms "
            "| plain fwd+bwd ms | fast fwd+bwd ms | fwd+bwd ratio |", "|" + "---|" * 11]
    for px, batch, stage, channels, h, k, stride in cases():
        plain, fast = _layers(channels, k, stride)
        x = nd.random.normal(shape=(batch, channels, h, h))
        pf, pfb = measure(plain, x, args.repeats)
        ff, ffb = measure(fast, x, args.repeats)
        rows.append("| %d px, %d | %d | %d | %dx%d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2fx |"
                    % (px, batch, stage, channels, h, h, k, stride, pf, ff, pfb, ffb, pfb / ffb))
        print(rows[-1], flush=True)
    impls = ["| case | variant | oneDNN convolution primitives of the last step (impl, kind, time) |",
             "|---|---|---|"]
    for channels, h, k, stride, batch in ((64, 56, 7, 1, 16), (320, 2, 7, 1, 64),
                                          (64, 8, 3, 1, 64)):
        for variant in ("plain", "fast"):
            names = impl_names(channels, h, k, stride, batch, variant)
            impls.append("| %dx%d map, %d ch, %dx%d, batch %d | %s | %s |"
                         % (h, h, channels, k, k, batch, variant, "; ".join(names)))
            print(impls[-1], flush=True)
    if args.output:
        write_section(args.output,
                      "## Depthwise convolution per layer\n\n%s; "
                      "`python bench/bench_depthwise.py`, medians of %d runs. *plain*: "
                      "`nn.Conv2D(groups=C)` (today's layer); *fast*: "
                      "`oneshot_nas.nn.DepthwiseConv2D` (kernel cropped to the map, weight "
                      "gradient as a depthwise forward convolution).\n\n%s\n\noneDNN "
                      "implementations (from `DNNL_VERBOSE=1`): the plain layer's weight gradient "
                      "runs `gemm` on plain NCHW; the fast layer's runs as a `forward_inference` "
                      "depthwise convolution (batch 1, N*C channels, kernel = output gradient).\n\n"
                      "%s\n" % (describe_machine(), args.repeats, "\n".join(rows),
                                "\n".join(impls)))


if __name__ == "__main__":
    main()
