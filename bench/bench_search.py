"""Candidates evaluated per hour: this search versus the earlier port's procedure, one run.

Both evaluate the same random candidates on the same synthetic 224 px images (JPEG RecordIO
written once): BN update on ``--calib`` images, then top-1 on ``--val`` images, plus the
candidate's FLOPs / params.

* ours: standalone subnet with sliced weights, exact pooled BN recalibration, hybridized
  evaluation, images decoded once and kept in memory, FLOPs from the lookup table;
* earlier procedure (reproduced here): the imperative supernet path at maximum width with the
  unselected channels masked, BN updated by running the calibration images through the path
  in training mode (EMA), images re-decoded from RecordIO for every candidate, FLOPs by
  building, exporting and counting the subnet's symbol.
"""
import argparse
import os
import statistics
import tempfile
import time

import cv2
import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from oneshot_nas import Architecture, get_model
from oneshot_nas.machine import describe_machine
from oneshot_nas.profiling import LookupTable, count_symbol_file
from oneshot_nas.search import CandidateEvaluator

# the script's own folder is on sys.path when run as `python bench/bench_search.py`
from bench_common import write_section
from bench_models import masked_forward


def write_rec(path, n, size, rng):
    rec = mx.recordio.MXIndexedRecordIO(path + ".idx", path + ".rec", "w")
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (9, 9), 3)
        header = mx.recordio.IRHeader(0, float(i % 10), i, 0)
        rec.write_idx(i, mx.recordio.pack_img(header, img, quality=90, img_fmt=".jpg"))
    rec.close()


def rec_batches(path, batch, size):
    it = mx.io.ImageRecordIter(path_imgrec=path + ".rec", path_imgidx=path + ".idx",
                               data_shape=(3, size, size), batch_size=batch, shuffle=False,
                               preprocess_threads=2, mean_r=123.68, mean_g=116.78, mean_b=103.94,
                               std_r=58.4, std_g=57.1, std_b=57.4)
    return [(b.data[0].copy(), b.label[0].copy()) for b in it]


def earlier_candidate(supernet, arch, rec_calib, rec_val, batch, size, tmp):
    # images re-decoded for every candidate
    calib = rec_batches(rec_calib, batch, size)
    val = rec_batches(rec_val, batch, size)
    supernet.set_architecture(arch)
    with autograd.train_mode():          # BN in training mode: batch statistics, EMA update
        for data, _ in calib:
            masked_forward(supernet, data).wait_to_read()
    correct = total = 0
    for data, label in val:
        out = masked_forward(supernet, data)
        correct += int((out.argmax(axis=1) == label).sum().asscalar())
        total += data.shape[0]
    # FLOPs: build, export, count
    sub = get_model("ShuffleNas_fixArch", architecture=arch, use_se=True,
                    last_conv_after_pooling=True, classes=1000)
    sub.initialize()
    sub.hybridize()
    sub(nd.zeros((1, 3, size, size)))
    prefix = os.path.join(tmp, "cand")
    sub.export(prefix)
    count = count_symbol_file(prefix + "-symbol.json", {"data": (1, 3, size, size)},
                              relu_bn=False)
    return correct / total, count.mflops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--calib", type=int, default=64, help="BN images per candidate")
    parser.add_argument("--val", type=int, default=64, help="validation images per candidate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--output", help="write a markdown section to this file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    mx.random.seed(0)
    supernet = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=1000)
    supernet.initialize(mx.init.Xavier())
    archs = [Architecture.sample(rng) for _ in range(args.candidates)]
    with tempfile.TemporaryDirectory() as tmp:
        rec_calib, rec_val = os.path.join(tmp, "calib"), os.path.join(tmp, "val")
        write_rec(rec_calib, args.calib, args.size, rng)
        write_rec(rec_val, args.val, args.size, rng)
        # ours: decode once, table lookups
        tic = time.perf_counter()
        table = LookupTable.load_or_build(use_se=True, last_conv_after_pooling=True,
                                          progress=False)
        calib = nd.concat(*[d for d, _ in rec_batches(rec_calib, args.batch_size, args.size)],
                          dim=0)
        val = rec_batches(rec_val, args.batch_size, args.size)
        setup = time.perf_counter() - tic
        evaluator = CandidateEvaluator(supernet, calib, val, batch_size=args.batch_size)
        ours = []
        for arch in archs:
            tic = time.perf_counter()
            evaluator.evaluate(arch)
            table.flops_params(arch)
            ours.append(time.perf_counter() - tic)
        earlier = []
        for arch in archs:
            tic = time.perf_counter()
            earlier_candidate(supernet, arch, rec_calib, rec_val, args.batch_size, args.size, tmp)
            earlier.append(time.perf_counter() - tic)
    ours_s, earlier_s = statistics.median(ours), statistics.median(earlier)
    lines = ["| procedure | s / candidate (median) | candidates / hour | vs earlier (same run) |",
             "|---|---|---|---|",
             "| earlier port's procedure (reproduced) | %.2f | %.0f | 1.00x |"
             % (earlier_s, 3600 / earlier_s),
             "| this search | %.2f | %.0f | %.2fx |" % (ours_s, 3600 / ours_s,
                                                      earlier_s / ours_s)]
    table_md = "\n".join(lines)
    print(table_md)
    print("one-off setup of this search (table load + decoding images once): %.2f s" % setup)
    if args.output:
        write_section(args.output,
                      "## Search: candidates per hour\n\n%s, %d px synthetic JPEG RecordIO, %d "
                      "candidates, %d BN images and %d validation images per candidate, batch %d "
                      "(`python bench/bench_search.py`).\n\n%s\n\nOne-off setup of this search "
                      "(lookup table load, decoding the images once): %.2f s.\n"
                      % (describe_machine(), args.size, args.candidates, args.calib, args.val,
                         args.batch_size, table_md, setup))


if __name__ == "__main__":
    main()
