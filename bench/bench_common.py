"""Helpers of the benchmark scripts: timing a step, the first training batch of a timed
step, the command line a report quotes, writing a report section."""
import argparse
import os
import statistics
import time

from mxnet import autograd, gluon, nd

__all__ = ["bench_parser", "median_seconds", "training_setup", "step_seconds", "command_line",
           "write_section", "publish"]


def bench_parser(doc, model=None):
    """A benchmark's parser: its docstring's first line, defaults shown, and ``--model``
    (default ``model``) when the benchmark times one model."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if model:
        p.add_argument("--model", default=model, help="the model timed")
    return p


def median_seconds(fn, warmup, repeats):
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def training_setup(net, batch, size, classes, rng, wd):
    """What a timed training step of ``net`` needs: its NAG trainer, the softmax loss and one
    random batch ``(x, y)`` of ``size`` px images with labels drawn from ``rng``."""
    trainer = gluon.Trainer(net.collect_params(), "nag",
                            {"learning_rate": 0.01, "momentum": 0.9, "wd": wd})
    x = nd.random.uniform(shape=(batch, 3, size, size))
    y = nd.array(rng.integers(0, classes, batch))
    return trainer, gluon.loss.SoftmaxCrossEntropyLoss(), x, y


def step_seconds(net, setup, warmup, repeats, before=None, forward=None):
    """Median seconds of one training step of ``net`` with ``setup`` (what
    :func:`training_setup` returns); ``before()`` runs at the start of every step (a supernet
    samples its path there) and ``forward(net, x)`` replaces ``net(x)``."""
    trainer, loss_fn, x, y = setup
    batch = x.shape[0]

    def step():
        if before is not None:
            before()
        with autograd.record():
            loss = loss_fn(forward(net, x) if forward else net(x), y)
        loss.backward()
        trainer.step(batch, ignore_stale_grad=before is not None)
        nd.waitall()
    return median_seconds(step, warmup, repeats)


def command_line(script, argv):
    """``Command: `python bench/<script> <argv>``` with ``--output`` and its value left out."""
    shown = [a for i, a in enumerate(argv)
             if a != "--output" and (i == 0 or argv[i - 1] != "--output")]
    return "Command: `python bench/%s %s`" % (script, " ".join(shown))


def write_section(path, text):
    """Write a report section to ``path``, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def publish(text, output):
    """Print a report section and, with ``output``, write it there too and say so."""
    print(text)
    if output:
        write_section(output, text)
        print("wrote %s" % output)
