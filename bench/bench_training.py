"""Training-step speed: today's plain layers vs the fast layer kit, and the loop vs the step.

Part 1 (same run, same architecture sequence): supernet steps (SE, last conv after pooling;
32 px batch 64 with random blocks at full width and with random widths; 224 px batch 16) and
fixed OneShot-S+ steps (32 px batch 64, 224 px batch 16), each with the plain depthwise layers
(``use_fast_depthwise(False)``: full kernels, oneDNN's own weight gradient; imperative choice
blocks: the way the layers were before) and with the fast ones (:mod:`oneshot_nas.nn.depthwise`,
hybridized full-width choice blocks).

Part 2: training-loop throughput (data + step, as train_imagenet.py runs it) vs the bare step,
synthetic 224 px data, OneShot-S+ hybridized, batch 16: the loop must stay within 10 %.
"""
import argparse
import logging
import tempfile

import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from bench_common import median_seconds, training_setup, write_section
from bench_models import bench_subnet

from oneshot_nas import Architecture, get_model
from oneshot_nas.machine import describe_machine
from oneshot_nas.nn import use_fast_depthwise
from oneshot_nas.search_space import NUM_BLOCKS, NUM_CHANNEL_CHOICES
from oneshot_nas.training import TrainConfig, train

# (label, model, px, batch, widths)
STEP_CASES = (
    ("digits supernet step, random blocks, full width", "ShuffleNas", 32, 64, "full"),
    ("digits supernet step, random blocks and widths", "ShuffleNas", 32, 64, "random"),
    ("OneShot-S+ training step", "OneShot-S+", 32, 64, None),
    ("OneShot-S+ training step", "OneShot-S+", 224, 16, None),
    ("supernet step, random blocks and widths", "ShuffleNas", 224, 16, "random"),
)


def step_speed(model, px, batch, widths, fast, warmup, repeats, seed=0):
    """Images per second of a training step (median of ``repeats`` steps)."""
    classes = 10 if px == 32 else 1000
    with use_fast_depthwise(fast):
        kwargs = (dict(use_se=True, last_conv_after_pooling=True)
                  if model == "ShuffleNas" else {})
        net = get_model(model, classes=classes, **kwargs)
        net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True)
        if model == "ShuffleNas" and not fast:
            for position in net.blocks:      # imperative choice blocks, as they were before
                position.choices.hybridize(False)
        rng = np.random.default_rng(seed)
        trainer, loss_fn, x, y = training_setup(net, batch, px, classes, rng, wd=4e-5)

        def step():
            if widths is not None:
                fixed = (NUM_CHANNEL_CHOICES - 1,) * NUM_BLOCKS if widths == "full" else None
                net.set_architecture(Architecture.sample(rng, fixed_channels=fixed))
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(batch, ignore_stale_grad=True)
            nd.waitall()

        return batch / median_seconds(step, warmup, repeats)


def layer_comparison(warmup, repeats):
    lines = ["| work | input | batch | plain layers img/s | fast layers img/s | fast / plain |",
             "|---|---|---|---|---|---|"]
    for label, model, px, batch, widths in STEP_CASES:
        steps = repeats if px == 32 else max(3, repeats // 2)
        # a supernet builds a graph per choice block on first use: warm up until (almost) all
        # 80 have run
        warm = warmup if widths is None else max(warmup, 12)
        plain = step_speed(model, px, batch, widths, False, warm, steps)
        fast = step_speed(model, px, batch, widths, True, warm, steps)
        lines.append("| %s | %d px | %d | %.2f | %.2f | %.2fx |"
                     % (label, px, batch, plain, fast, fast / plain))
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=12, help="batches per epoch")
    p.add_argument("--steps", type=int, default=10, help="timed steps per layer comparison")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--skip-loop", action="store_true", help="only the layer comparison")
    p.add_argument("--output", help="write a markdown section to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    layers = layer_comparison(args.warmup, args.steps)
    if args.skip_loop:
        if args.output:
            write_section(args.output, _layers_section(args, layers))
        return
    bare = bench_subnet(args.size, args.batch_size, warmup=2, repeats=args.batches)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(TrainConfig(
            dataset="synthetic", model="OneShot-S+", input_size=args.size,
            batch_size=args.batch_size, num_epochs=2, lr=0.01,
            synthetic_size=args.batches * args.batch_size,
            save_dir=None, logging_file=None, metrics_file=None, progress=False,
            num_workers=2, log_interval=0))
        del tmp
    # the second epoch: warm MKLDNN primitives and a running data pipeline
    loop = summary["epochs"][-1]["speed"]
    table = ("| work | img/s |\n|---|---|\n| bare training step (bench_models) | %.2f |\n"
             "| training loop, data + step (train_imagenet, synthetic data) | %.2f |\n"
             "| loop / bare step | %.2fx |" % (bare, loop, loop / bare))
    print(table)
    if args.output:
        write_section(args.output, _layers_section(args, layers) + "\n"
                      "## Training loop vs bare step\n\n%s, OneShot-S+ hybridized, %d px, batch "
                      "%d, %d batches per epoch (`python bench/bench_training.py`).\n\n%s\n"
                      % (describe_machine(), args.size, args.batch_size, args.batches, table))


def _layers_section(args, table):
    return ("## Training steps: plain vs fast depthwise layers\n\n%s; `python bench/bench_training.py`"
            "; median of %d timed steps (%d at 224 px) after %d warm-up steps, the same random "
            "architectures for both variants. *plain*: full kernels and oneDNN's own depthwise "
            "weight gradient (the layers before the fast paths); *fast*: kernels cropped to "
            "small maps and the weight gradient as a depthwise forward convolution "
            "(`oneshot_nas.nn.depthwise`; per-layer figures and oneDNN kernels in the next "
            "section).\n\n%s\n" % (describe_machine(), args.steps, max(3, args.steps // 2),
                                    args.warmup, table))


if __name__ == "__main__":
    main()
