"""Throughput of the data loaders: images per second of one training epoch.

ImageNet-style figures use a temporary set of JPEG images of ImageNet's typical size (about
500x375, written once into a temporary folder as an image folder and as RecordIO files, and
deleted afterwards) through the full training augmentation at 224 px; digits figures use the
prepared digits cache at 32 px with its mild augmentation; synthetic figures slice fixed
in-memory tensors. Prints a markdown table; with --output writes it as a markdown section.
"""
import argparse
import os
import platform
import sys
import tempfile
import time

import cv2
import mxnet as mx
import numpy as np

from bench_common import write_section

from oneshot_nas.data import make_loaders, prepare_digits


def _photo_like(rng, height, width):
    """Smooth random colour image (compresses like a photo, unlike white noise)."""
    small = rng.randint(0, 256, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.randint(-12, 13, size=image.shape)
    return np.clip(image.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def write_imagenet_like(root, num_images, num_classes, seed=0):
    """An image folder ``root/images/{train,val}/<class>/`` and ``root/{train,val}.rec/.idx``."""
    rng = np.random.RandomState(seed)
    for split in ("train", "val"):
        writer = mx.recordio.MXIndexedRecordIO(os.path.join(root, split + ".idx"),
                                               os.path.join(root, split + ".rec"), "w")
        for i in range(num_images):
            label = i % num_classes
            height, width = rng.randint(333, 420), rng.randint(450, 520)
            image = _photo_like(rng, height, width)
            folder = os.path.join(root, "images", split, "n%03d" % label)
            os.makedirs(folder, exist_ok=True)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            with open(os.path.join(folder, "%05d.jpg" % i), "wb") as handle:
                handle.write(jpeg.tobytes())
            writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), i, 0),
                                                 jpeg.tobytes()))
        writer.close()


def measure(loader, epochs):
    """Images per second and CPU milliseconds per image of this process (decoding threads
    included, worker processes not) over ``epochs`` epochs, after a warm-up epoch."""
    iterator = iter(loader)
    next(iterator)
    for _ in iterator:  # finish the warm-up epoch: iterator start-up costs count below
        pass
    images = 0
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for data, label in loader:
            data.wait_to_read()
            images += data.shape[0]
    return images / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / images


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256,
                        help="ImageNet-like images per split (default 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--digits-batch-size", type=int, default=64)
    parser.add_argument("-j", "--num-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per figure")
    parser.add_argument("--output", help="write the markdown section to this file")
    args = parser.parse_args(argv)

    rows = []
    workers = args.num_workers
    with tempfile.TemporaryDirectory(prefix="bench_data_") as root:
        write_imagenet_like(root, args.images, num_classes=8)
        rec = dict(use_rec=True, rec_train=os.path.join(root, "train.rec"),
                   rec_val=os.path.join(root, "val.rec"))
        folder = dict(use_rec=False, data_dir=os.path.join(root, "images"))
        for name, source in (("ImageRecordIter", rec), ("image folder + DataLoader", folder)):
            for augment in (True, False):
                train, _, _ = make_loaders("imagenet", batch_size=args.batch_size,
                                           num_workers=workers, input_size=224,
                                           augment=augment, **source)
                what = "training augmentation" if augment else "resize + centre crop"
                rows.append(("imagenet-like JPEG ~500x375, %s" % name, what, 224,
                             args.batch_size, measure(train, args.epochs)))
                del train
    train, _, _ = make_loaders("synthetic", batch_size=args.batch_size, input_size=224)
    rows.append(("synthetic tensors", "-", 224, args.batch_size, measure(train, args.epochs)))
    prepare_digits(32)
    for name, use_rec in (("ImageRecordIter", True), ("image folder + DataLoader", False)):
        train, _, _ = make_loaders("digits", use_rec=use_rec, batch_size=args.digits_batch_size,
                                   num_workers=workers, input_size=32)
        rows.append(("digits PNG 32x32, %s" % name, "shift <= 2 px", 32,
                     args.digits_batch_size, measure(train, max(args.epochs, 5))))

    command = "python bench/bench_data.py " + " ".join(argv if argv is not None
                                                      else sys.argv[1:])
    lines = ["## Data loading", "",
             "Machine: %s, %d cores, Python %s, mxnet %s  " % (
                 platform.processor() or platform.machine(), os.cpu_count() or 0,
                 platform.python_version(), mx.__version__),
             "Command: `%s`  " % command.strip(),
             "One training epoch per figure after a warm-up epoch, %d decoding "
             "threads / processes." % workers, "",
             "CPU ms / image: this process's CPU time (decoding threads included); the image "
             "folder decodes in worker processes, not counted there.", "",
             "| data | augmentation | input | batch | img/s | CPU ms / image |",
             "|---|---|---|---|---|---|"]
    lines += ["| %s | %s | %d px | %d | %.0f | %s |" % (name, aug, size, batch, speed[0],
                                                     "%.3f" % speed[1] if "folder" not in name
                                                     else "-")
              for name, aug, size, batch, speed in rows]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        write_section(args.output, report)


if __name__ == "__main__":
    main()
