"""Data-parallel CPU training: one process with every thread against one context or one
Horovod worker per core, at the same total batch.

Three modes, each run as a user runs it (``train_imagenet.py`` in a subprocess, so that the
thread settings take effect before MXNet starts):

* ``one-process``: one process, one context, ``OMP_NUM_THREADS`` = cores (the trainer's plain
  run);
* ``contexts``: one process, ``--devices cpu:0,...``: one context per core, one OpenMP thread
  each; MXNet's engine gives every CPU context a worker thread of its own, so the contexts run
  at once (``MXNET_CPU_WORKER_NTHREADS=1`` per context);
* ``horovod``: one Horovod worker per core on localhost (Gloo), one OpenMP thread each.

Two workloads: the Fashion-MNIST supernet with the settings of the default recipe (batch 64,
SE, last conv after pooling, affine-free choice-block BN, random widths, 5,000 held-out
images) for ``--supernet-batches`` batches, and a stand-alone run of the stored table's
median-FLOPs row with the table's protocol for one epoch of its 10,000 training images. Speed
is images per second between the end of the warm-up batches and the last batch (the step
records' clock); the stand-alone runs also give the test top-1 after that epoch, which must
agree across modes within the seed-to-seed difference of the one-process run (seeds 0 and 1).
Each mode's line reads ``data-parallel speedup X.XXx (MODE)``, the ratio to the one-process
mode measured in the same run; the mode the project trains with by default ends in
``default``.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import command_line, publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "docs", "ranking", "fashion_mnist_table.json")
MODES = ("one-process", "contexts", "horovod")
DEFAULT_MODE = "one-process"
TOTAL_BATCH = 64
LR = 0.1
COMMON = ["--dataset", "fashion-mnist", "--input-size", "32", "--num-gpus", "0", "-j", "0",
          "--channels-layout", "OneShot", "--use-se", "--last-conv-after-pooling", "--no-wd",
          "--optimizer", "nag", "--momentum", "0.9", "--wd", "4e-5", "--lr-mode", "cosine",
          "--no-progress", "--save-frequency", "0", "--log-interval", "1"]


def median_row():
    """Block and channel choices of the stored table's median-FLOPs row."""
    with open(TABLE) as f:
        rows = sorted(json.load(f)["architectures"], key=lambda r: r["flops"])
    row = rows[len(rows) // 2]
    return row["row"], row["flops"], row["block_choices"], row["channel_choices"]


def workload_flags(kind, batches, block_choices, channel_choices):
    if kind == "supernet":
        return ["--model", "ShuffleNas", "--affine-free-bn", "--epoch-start-cs", "0",
                "--update-bn-images", "64", "--val-subnets", "1", "--holdout-search", "5000",
                "--num-epochs", "1", "--warmup-epochs", "0",
                "--max-batches-per-epoch", str(batches)]
    return ["--model", "ShuffleNas_fixArch", "--block-choices", block_choices,
            "--channel-choices", channel_choices, "--train-subset", "10000",
            "--num-epochs", "1", "--warmup-epochs", "0"]


def command(mode, workers, flags, out, seed):
    """``(argv, environment)`` of one run in ``mode`` with ``workers`` cores."""
    env = dict(os.environ)
    script = [sys.executable, os.path.join(ROOT, "train_imagenet.py")]
    tail = COMMON + flags + ["--seed", str(seed), "--save-dir", out,
                             "--logging-file", os.path.join(out, "log.txt")]
    if mode == "one-process":
        env["OMP_NUM_THREADS"] = str(workers)
        return script + tail + ["--batch-size", str(TOTAL_BATCH), "--lr", str(LR)], env
    env["OMP_NUM_THREADS"] = "1"
    per = TOTAL_BATCH // workers
    if mode == "contexts":
        env["MXNET_CPU_WORKER_NTHREADS"] = "1"
        devices = ",".join("cpu:%d" % i for i in range(workers))
        return script + tail + ["--devices", devices, "--batch-size", str(per),
                                "--lr", str(LR)], env
    horovodrun = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable),
                                                            "horovodrun")
    # the trainer multiplies the learning rate by the number of workers (linear scaling for a
    # growing total batch); the total batch is fixed here, so the flag is divided by it
    return ([horovodrun, "-np", str(workers), "-H", "localhost:%d" % workers, "--gloo"]
            + script + ["--horovod"] + tail + ["--batch-size", str(per),
                                               "--lr", str(LR / workers)]), env


def run(mode, workers, flags, seed, warmup, timeout):
    """``(img/s, test or held-out top-1)`` of one run."""
    out = tempfile.mkdtemp(prefix="bench_parallel_")
    try:
        argv, env = command(mode, workers, flags, out, seed)
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            sys.exit("bench_parallel: %s did not finish in %d s" % (mode, timeout))
        if proc.returncode != 0:
            sys.exit("bench_parallel: %s failed:\n%s" % (mode, (proc.stdout + proc.stderr)[-3000:]))
        with open(os.path.join(out, "log.jsonl")) as f:
            records = [json.loads(line) for line in f]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    steps = [r for r in records if r["kind"] == "step"]
    first, last = steps[warmup - 1], steps[-1]
    speed = (last["batch"] - first["batch"]) * TOTAL_BATCH / (last["seconds"] - first["seconds"])
    top1 = next(r["top1"] for r in records if r["kind"] == "val")
    return speed, top1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="contexts / Horovod workers (and one-process threads); default: cores")
    p.add_argument("--supernet-batches", type=int, default=60,
                   help="supernet batches of %d per run (default 60)" % TOTAL_BATCH)
    p.add_argument("--warmup", type=int, default=10, help="untimed batches per run (default 10)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per run before giving up")
    p.add_argument("--output", help="also write the report (markdown) to this file")
    args = p.parse_args(argv)
    if args.workers < 2 or TOTAL_BATCH % args.workers:
        p.error("--workers must be >= 2 and divide the batch of %d" % TOTAL_BATCH)
    from oneshot_nas.machine import describe_machine
    row, flops, blocks, channels = median_row()
    tic = time.time()
    lines = ["## Data-parallel CPU training (bench/bench_parallel.py)", "",
             "Measured on its own, nothing else running: %s; %d workers; total batch %d in "
             "every mode; speed from the step records after %d warm-up batches." % (
                 describe_machine(), args.workers, TOTAL_BATCH, args.warmup), "",
             command_line("bench_parallel.py", sys.argv[1:] if argv is None else argv), ""]
    for kind in ("supernet", "stand-alone"):
        flags = workload_flags(kind, args.supernet_batches, blocks, channels)
        title = ("Fashion-MNIST supernet (default recipe settings, random widths), %d batches"
                 % args.supernet_batches if kind == "supernet" else
                 "stand-alone table run, row %d (%.0f MFLOPs), one epoch of 10,000 images"
                 % (row, flops))
        lines += ["### " + title, "", "```"]
        print(lines[-3], flush=True)
        results = {mode: run(mode, args.workers, flags, 0, args.warmup, args.timeout)
                   for mode in MODES}
        base = results["one-process"][0]
        split = "held-out" if kind == "supernet" else "test"
        for mode in MODES:
            speed, top1 = results[mode]
            line = "%-11s %7.1f img/s, %s top-1 %.4f: data-parallel speedup %.2fx (%s)%s" % (
                kind, speed, split, top1, speed / base, mode,
                " default" if mode == DEFAULT_MODE else "")
            lines.append(line)
            print(line, flush=True)
        if kind == "stand-alone":
            _, again = run("one-process", args.workers, flags, 1, args.warmup, args.timeout)
            spread = max(r[1] for r in results.values()) - min(r[1] for r in results.values())
            lines.append("stand-alone one-process seed 1: test top-1 %.4f; seed-to-seed "
                         "difference %.4f, largest difference between modes (seed 0) %.4f"
                         % (again, abs(again - results["one-process"][1]), spread))
            print(lines[-1], flush=True)
        lines += ["```", ""]
    lines.append("total time %.0f s" % (time.time() - tic))
    if args.output:
        publish("\n".join(lines), args.output)
    else:
        print(lines[-1])


if __name__ == "__main__":
    main()
