"""scikit-learn's handwritten digits as an ImageNet-style image folder and RecordIO files.

``prepare_digits`` writes the 1,797 real 8x8 images of :func:`sklearn.datasets.load_digits`
once into a cache folder, upscaled to the input size as 3-channel PNGs::

    $ONESHOT_NAS_CACHE/digits-32px/
        images/train/<class>/<key>.png, images/val/<class>/<key>.png
        rec/train.rec, train.idx, train.lst, val.rec, val.idx, val.lst
        meta.json   (written last: counts per split and class, pixel mean / std)

The train / val split is stratified (20 % of every class to val) and fixed: it comes from
numpy's legacy ``RandomState`` with a constant seed, whose stream numpy keeps stable across
versions. Records are stored in a fixed shuffled order, as ``im2rec`` does, so a contiguous
slice of a ``.rec`` file (a reduced data set, a Horovod shard) holds a mix of classes.
"""
import json
import logging
import os
import shutil
import tempfile
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from .errors import DataError
from .recordio import format_lst_line

__all__ = ["prepare_digits", "cache_root", "digits_split", "upscale_digit",
           "DIGITS_VAL_FRACTION"]

logger = logging.getLogger(__name__)

CACHE_ENV = "ONESHOT_NAS_CACHE"
DEFAULT_CACHE = os.path.join("~", ".cache", "oneshot_nas")
DIGITS_VAL_FRACTION = 0.2
# Bump when the layout or the pixels change, so an old cache is never read as a new one.
_FORMAT_VERSION = 1
_SPLIT_SEED = 20190401
_ORDER_SEED = 8
_STALE_TMP_SECONDS = 3600


def cache_root(cache_dir=None):
    """The cache folder: ``cache_dir``, else ``$ONESHOT_NAS_CACHE``, else ``~/.cache/oneshot_nas``.

    Parameters
    ----------
    cache_dir : str, optional

    Returns
    -------
    str
        Absolute path (not created).
    """
    root = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return os.path.abspath(os.path.expanduser(str(root)))


def digits_split(labels, val_fraction=DIGITS_VAL_FRACTION, seed=_SPLIT_SEED):
    """Fixed stratified split of sample indices into train and val.

    Parameters
    ----------
    labels : array-like of int
    val_fraction : float
        Share of every class that goes to val (rounded to the nearest image).
    seed : int

    Returns
    -------
    train, val : numpy.ndarray of int64
        Sorted sample indices.
    """
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    val = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        val.append(rng.permutation(members)[:int(round(len(members) * val_fraction))])
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def upscale_digit(image8, input_size):
    """8x8 grey levels 0..16 -> ``input_size`` square 3-channel uint8 (bilinear)."""
    import cv2  # heavy: opencv, loaded only for image work
    grey = np.round(image8.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)
    grey = cv2.resize(grey, (input_size, input_size), interpolation=cv2.INTER_LINEAR)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _paths(folder):
    paths = {"dir": folder, "root": os.path.join(folder, "images"),
             "meta": os.path.join(folder, "meta.json")}
    for split in ("train", "val"):
        for ext in ("rec", "idx", "lst"):
            paths["%s_%s" % (ext, split)] = os.path.join(folder, "rec", "%s.%s" % (split, ext))
    return paths


def _write_split(folder, split, keys, images, labels, progress):
    """Write one split as PNG folder + .lst + indexed .rec (keys give the record order)."""
    import cv2  # heavy: opencv, loaded only for image work
    image_root = os.path.join(folder, "images", split)
    for cls in np.unique(labels):
        os.makedirs(os.path.join(image_root, str(cls)))
    rec_dir = os.path.join(folder, "rec")
    os.makedirs(rec_dir, exist_ok=True)
    record = mx.recordio.MXIndexedRecordIO(os.path.join(rec_dir, split + ".idx"),
                                           os.path.join(rec_dir, split + ".rec"), "w")
    with open(os.path.join(rec_dir, split + ".lst"), "w") as lst:
        for key, image, label in zip(keys, images, labels):
            relative = "%d/%05d.png" % (label, key)
            # PNG is lossless, so the folder and the records hold identical pixels.
            if not cv2.imwrite(os.path.join(image_root, relative), image):
                raise DataError("could not write %s" % os.path.join(image_root, relative))
            lst.write(format_lst_line(key, label, relative))
            header = mx.recordio.IRHeader(0, float(label), int(key), 0)
            record.write_idx(int(key), mx.recordio.pack_img(header, image, quality=3,
                                                            img_fmt=".png"))
            progress.update(1)
    record.close()


def _build(folder, input_size):
    from sklearn.datasets import load_digits  # heavy: scikit-learn, only to build the cache
    digits = load_digits()
    labels = digits.target.astype(np.int64)
    train, val = digits_split(labels)
    meta = {"version": _FORMAT_VERSION, "input_size": input_size, "source":
            "sklearn.datasets.load_digits", "num_classes": int(labels.max() + 1),
            "val_fraction": DIGITS_VAL_FRACTION, "split_seed": _SPLIT_SEED}
    rng = np.random.RandomState(_ORDER_SEED)
    with tqdm(total=len(labels), desc="digits %dpx" % input_size, unit="img",
              leave=False) as progress:
        for split, members in (("train", train), ("val", val)):
            # Record order: a fixed shuffle, as im2rec's default; keys are sample indices.
            members = rng.permutation(members)
            images = np.stack([upscale_digit(digits.images[i], input_size) for i in members])
            _write_split(folder, split, members, images, labels[members], progress)
            meta["num_" + split] = int(len(members))
            meta["per_class_" + split] = np.bincount(labels[members]).tolist()
            if split == "train":
                # Pixel statistics of the training images (0..255 scale), for normalisation.
                meta["mean"] = [float(images.mean())] * 3
                meta["std"] = [float(images.std())] * 3
    # meta.json last: its presence marks a complete folder (the rename makes it atomic anyway).
    with open(os.path.join(folder, "meta.json"), "w") as handle:
        json.dump(meta, handle, indent=1)


def _remove_stale_temporaries(root, prefix):
    """Delete temporary folders of preparations that died more than an hour ago."""
    now = time.time()
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.startswith(prefix) and now - os.path.getmtime(path) > _STALE_TMP_SECONDS:
            logger.info("removing stale temporary folder %s", path)
            shutil.rmtree(path, ignore_errors=True)


def load_digits_meta(meta_path):
    """Read the ``meta.json`` of a prepared digits folder; raise :class:`DataError` if broken."""
    try:
        with open(meta_path) as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise DataError("incomplete digits cache, %s is missing: delete %s and run again"
                        % (meta_path, os.path.dirname(meta_path))) from None
    except (OSError, ValueError):
        raise DataError("corrupt digits cache file %s: delete %s and run again"
                        % (meta_path, os.path.dirname(meta_path))) from None
    return meta


def prepare_digits(input_size=32, cache_dir=None):
    """Write the scikit-learn digits once as an image folder and RecordIO files; reuse them.

    The first call builds the files in a temporary folder beside the cache entry and renames
    it into place, so an interrupted preparation never leaves a half-written cache; later
    calls (any process) only read ``meta.json``.

    Parameters
    ----------
    input_size : int
        Side of the square images (the 8x8 originals are upscaled bilinearly).
    cache_dir : str, optional
        Default: ``$ONESHOT_NAS_CACHE`` or ``~/.cache/oneshot_nas``.

    Returns
    -------
    dict
        ``root`` (folder with ``train/`` and ``val/``, one sub-folder per class),
        ``rec_train``, ``rec_train_idx``, ``rec_val``, ``rec_val_idx``, ``lst_train``,
        ``lst_val``, ``meta`` (path of ``meta.json``), ``dir`` (the cache entry) and
        ``num_classes``, ``num_train``, ``num_val``, ``mean``, ``std`` (from ``meta.json``).
    """
    input_size = int(input_size)
    if input_size < 8:
        raise ValueError("digits input size must be at least 8, got %d" % input_size)
    root = cache_root(cache_dir)
    name = "digits-%dpx-v%d" % (input_size, _FORMAT_VERSION)
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
        os.makedirs(root, exist_ok=True)
        prefix = "." + name + ".tmp-"
        _remove_stale_temporaries(root, prefix)
        temporary = tempfile.mkdtemp(prefix=prefix, dir=root)
        try:
            logger.info("writing the scikit-learn digits at %d px to %s", input_size, folder)
            _build(temporary, input_size)
            try:
                os.rename(temporary, folder)
            except OSError:
                if not os.path.isdir(folder):
                    raise
                # Another process finished the same preparation first: keep its copy.
                logger.info("digits cache %s was written by another process", folder)
        finally:
            if os.path.isdir(temporary):
                shutil.rmtree(temporary, ignore_errors=True)
    paths = _paths(folder)
    meta = load_digits_meta(paths["meta"])
    if meta.get("version") != _FORMAT_VERSION or meta.get("input_size") != input_size:
        raise DataError("digits cache %s does not match this version: delete it and run again"
                        % paths["meta"])
    paths = {"root": paths["root"], "rec_train": paths["rec_train"],
             "rec_train_idx": paths["idx_train"], "rec_val": paths["rec_val"],
             "rec_val_idx": paths["idx_val"], "lst_train": paths["lst_train"],
             "lst_val": paths["lst_val"], "meta": paths["meta"], "dir": folder}
    paths.update({key: meta[key] for key in ("num_classes", "num_train", "num_val", "mean",
                                             "std")})
    return paths
