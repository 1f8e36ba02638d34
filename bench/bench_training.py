"""Training-loop throughput (data + step, as train_imagenet.py runs it) vs the bare step.

Synthetic 224 px data, OneShot-S+ hybridized, batch 16: the loop's per-epoch speed must stay
within 10 % of the bare training step measured in the same run (data loading, metrics and
logging must not be the bottleneck).
"""
import argparse
import logging
import tempfile

from bench_models import bench_subnet, machine_description

from oneshot_nas.training import TrainConfig, train


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batches", type=int, default=12, help="batches per epoch")
    p.add_argument("--output", help="write a markdown section to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
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
        with open(args.output, "w") as f:
            f.write("## Training loop vs bare step\n\n%s, OneShot-S+ hybridized, %d px, batch %d, "
                    "%d batches per epoch (`python bench/bench_training.py`).\n\n%s\n"
                    % (machine_description(), args.size, args.batch_size, args.batches, table))


if __name__ == "__main__":
    main()
