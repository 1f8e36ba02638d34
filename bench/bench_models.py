"""Training-step speed of the supernet, the masked reference and the OneShot-S+ subnet.

Prints a markdown table and (with --output) writes it with the machine description. All
figures come from one run; ratios compare against the masked reference measured in the same
run, which computes every sampled block at maximum width and masks the unselected channels to
zero (the earlier port's method). Figures of the earlier port (docs/design.md, section 7) are
printed
beside ours for orientation only: they were measured in another run.
"""
import argparse
import sys

import mxnet as mx
import numpy as np
from mxnet import nd

from bench_common import step_seconds, training_setup, write_section

from oneshot_nas import Architecture, get_model
from oneshot_nas.machine import describe_machine

EARLIER_PORT = {("supernet", 224): 1.74, ("supernet", 64): 23.5,
                ("OneShot-S+", 224): 5.98, ("OneShot-S+", 64): 55.8}


def masked_forward(supernet, x):
    """Reference: the sampled path at maximum width with unselected mid channels zeroed."""
    x = supernet.stem(x)
    arch = supernet.architecture
    for position, choice, active in zip(supernet.blocks, arch.blocks, supernet._active):
        block = position.choices[choice]
        proj, main = block.split(nd, x)
        mask = None
        if active is not None:
            mask = nd.zeros((1, block.mid_channels, 1, 1))
            mask[:, :active] = 1
        for layer, sliced in zip(block.main, block._sliced):
            main = layer(main)
            if sliced and mask is not None and main.shape[1] == block.mid_channels:
                main = nd.broadcast_mul(main, mask)
        if block.se is not None:
            main = block.se(main)
        x = nd.concat(proj, main, dim=1)
    return supernet.head(supernet.tail(x))


def bench_supernet(size, batch, warmup, repeats, masked=False, seed=0):
    net = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=1000)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    rng = np.random.default_rng(seed)
    setup = training_setup(net, batch, size, 1000, rng, wd=4e-5)
    return batch / step_seconds(net, setup, warmup, repeats,
                                before=lambda: net.set_architecture(Architecture.sample(rng)),
                                forward=masked_forward if masked else None)


def bench_subnet(size, batch, warmup, repeats, seed=0):
    net = get_model("OneShot-S+", classes=1000)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    setup = training_setup(net, batch, size, 1000, np.random.default_rng(seed), wd=3e-5)
    return batch / step_seconds(net, setup, warmup, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sizes", default="224:16,64:64", help="size:batch pairs")
    parser.add_argument("--output", help="write the markdown report to this file")
    args = parser.parse_args(argv)

    rows = []
    for pair in args.sizes.split(","):
        size, batch = (int(v) for v in pair.split(":"))
        print("measuring %d px, batch %d ..." % (size, batch), file=sys.stderr, flush=True)
        ours = bench_supernet(size, batch, args.warmup, args.repeats)
        ref = bench_supernet(size, batch, args.warmup, args.repeats, masked=True)
        sub = bench_subnet(size, batch, args.warmup, args.repeats)
        rows.append(("supernet step (SE, last conv after pooling), sliced channels",
                     size, batch, ours, ours / ref, EARLIER_PORT[("supernet", size)]))
        rows.append(("supernet step, masked full-width reference", size, batch, ref, 1.0,
                     EARLIER_PORT[("supernet", size)]))
        rows.append(("OneShot-S+ training step, hybridized", size, batch, sub, None,
                     EARLIER_PORT[("OneShot-S+", size)]))

    lines = ["| work | input | batch | img/s | vs masked reference (same run) | earlier port "
             "| vs earlier port |", "|---|---|---|---|---|---|---|"]
    for work, size, batch, ips, ratio, earlier in rows:
        lines.append("| %s | %d px | %d | %.2f | %s | %.2f | %.2fx |" % (
            work, size, batch, ips, "%.2fx" % ratio if ratio is not None else "-", earlier,
            ips / earlier))
    table = "\n".join(lines)
    print(table)
    if args.output:
        write_section(args.output, "## Training steps: supernet, masked reference, OneShot-S+\n\n"
                      "%s; `python bench/bench_models.py`; median of %d timed training steps "
                      "after %d warm-up steps; a random architecture per supernet step (the same "
                      "sequence for the sliced supernet and the masked reference).\n\n%s\n"
                      % (describe_machine(), args.repeats, args.warmup, table))


if __name__ == "__main__":
    main()
