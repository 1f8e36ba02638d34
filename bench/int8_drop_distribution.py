"""How much top-1 int8 quantization loses on the digits OneShot-S+ of the deploy test, over
many training runs: the distribution a test bound is sized from.

Each run trains OneShot-S+ at 32 px on the digits (the settings of the deploy test: 10 epochs,
batch 64, lr 0.2, cosine, no augmentation, seed ``s``), quantizes it with naive and entropy
calibration on the first 10 training batches of 32, and evaluates fp32 and both int8 graphs
on the 359 validation images. Prints one line per run and the largest drops, and writes every
figure to ``--output`` (JSON).
"""
import argparse
import json
import logging
import tempfile
import time

import numpy as np

from oneshot_nas.data import make_loaders
from oneshot_nas.deploy import build_subnet, calibration_iter, evaluate_variants, \
    net_to_graph, quantize_graph
from oneshot_nas.training import train
from oneshot_nas.training.config import TrainConfig

MODES = ("naive", "entropy")


def one_run(seed, data_workers):
    """``{'seed', 'fp32', 'int8-naive', 'int8-entropy', 'seconds'}`` (top-1 fractions)."""
    tic = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        train(TrainConfig(dataset="digits", model="OneShot-S+", input_size=32, batch_size=64,
                          num_epochs=10, lr=0.2, lr_mode="cosine", no_augment=True, seed=seed,
                          save_dir=tmp, logging_file=None, metrics_file=None,
                          num_workers=data_workers, progress=False))
        net = build_subnet("OneShot-S+", params_file=tmp + "/OneShot-S+-final.params",
                           input_size=32)
    graph = net_to_graph(net)
    train_data, val_data, _ = make_loaders(dataset="digits", input_size=32, batch_size=32,
                                           augment=False, num_workers=data_workers)
    graphs = {"fp32": graph}
    for mode in MODES:
        calib, _ = calibration_iter(train_data, 10)
        graphs["int8-" + mode] = quantize_graph(*graph, calib_mode=mode, calib_data=calib)
    results = evaluate_variants(graphs, 32, val_data, variants=tuple(graphs), speed=False)
    row = {r.name: r.top1 for r in results}
    row.update(seed=seed, seconds=time.time() - tic)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-19",
                   help="training seeds, a range A-B or a comma list (default 0-19)")
    p.add_argument("--repeat-seed", type=int, default=2,
                   help="also run seed 0 this many times in all, to see whether one seed "
                        "repeats its figures (default 2)")
    p.add_argument("-j", "--data-workers", type=int, default=2,
                   help="data-loading processes, as the test (default 2)")
    p.add_argument("--output", help="write every run's figures here (JSON)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if "-" in args.seeds:
        low, high = (int(v) for v in args.seeds.split("-"))
        seeds = list(range(low, high + 1))
    else:
        seeds = [int(v) for v in args.seeds.split(",")]
    seeds += [seeds[0]] * max(0, args.repeat_seed - 1)
    rows = []
    for seed in seeds:
        row = one_run(seed, args.data_workers)
        rows.append(row)
        print("seed %2d: fp32 %.4f, int8 naive %.4f (drop %+.2f points), entropy %.4f (drop "
              "%+.2f points), %.0f s" % (seed, row["fp32"], row["int8-naive"],
                                         100 * (row["fp32"] - row["int8-naive"]),
                                         row["int8-entropy"],
                                         100 * (row["fp32"] - row["int8-entropy"]),
                                         row["seconds"]), flush=True)
        if args.output:
            with open(args.output, "w") as f:
                json.dump({"runs": rows}, f, indent=1)
    for mode in MODES:
        drops = np.array([100 * (r["fp32"] - r["int8-" + mode]) for r in rows])
        print("%s: drop over %d runs: mean %.2f, max %.2f points; above 1 point in %d, above "
              "2 in %d, above 3 in %d" % (mode, len(drops), drops.mean(), drops.max(),
                                          (drops > 1).sum(), (drops > 2).sum(),
                                          (drops > 3).sum()))


if __name__ == "__main__":
    main()
