"""Fashion-MNIST read from its four official IDX files (the ranking benchmark's data set).

Where the files come from: Debian's package ``dataset-fashion-mnist`` (``apt-get install
dataset-fashion-mnist``) puts them into ``/usr/share/datasets/fashion-mnist/``; MXNet's own
download folder (``~/.mxnet/datasets/fashion-mnist``) is tried next. Debian's ``.gz`` files are
compressed differently from the upstream downloads, so ``gluon.data.vision.FashionMNIST`` rejects
their SHA-1 and tries to download: this module reads the IDX content itself, plain or gzipped,
and checks what it reads (magic number, sizes, label range, image / label counts).

Images become network inputs by zero padding 28 -> 32 px (2 pixels on every side; other sizes
are resized from the padded image) and repeating the grey channel three times. Padding keeps
every pixel as it is (no interpolation blur), gives the 32-px input whose 5 stride-2 stages end
at 1 x 1, and is what the stand-alone figures in docs/ranking.md were measured with.

Splits: the official 10,000-image test file is the validation split of every final report; the
held-out search split is taken from the 60,000-image training file (:mod:`.splits`); a training
subset, when asked for, is stratified (the same number of images of every class) and seeded by a
constant of its own, so that every run with the same count trains on the same images.
"""
import functools
import gzip
import hashlib
import logging
import os

import numpy as np

from .errors import DataError

__all__ = ["FASHION_MNIST_FILES", "FASHION_MNIST_CLASSES", "DEBIAN_DIR", "INSTALL_HINT",
           "default_data_dirs", "find_data_dir", "read_idx", "load_fashion_mnist",
           "to_network_input", "stratified_subset"]

logger = logging.getLogger(__name__)

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
INSTALL_HINT = "install it with: apt-get install dataset-fashion-mnist (as root), or pass " \
               "--data-dir with the four IDX files"
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
# The training subset must not move with --seed (every run of one protocol sees one subset).
_SUBSET_SEED = 6011


def default_data_dirs():
    """Folders searched when no ``data_dir`` is given, in order."""
    mxnet_home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
    return [DEBIAN_DIR,
            os.path.abspath(os.path.expanduser(os.path.join(mxnet_home, "datasets",
                                                            "fashion-mnist")))]


def _file_in(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def find_data_dir(data_dir=None):
    """The folder holding the four IDX files: ``data_dir``, else the first default that has them.

    Raises
    ------
    DataError
        One line naming the missing file and how to get it.
    """
    candidates = [os.path.abspath(os.path.expanduser(data_dir))] if data_dir \
        else default_data_dirs()
    for folder in candidates:
        if all(_file_in(folder, stem) for stem in FASHION_MNIST_FILES.values()):
            return folder
    folder = candidates[0]
    missing = next(stem for stem in FASHION_MNIST_FILES.values() if not _file_in(folder, stem))
    where = folder if data_dir else " or ".join(candidates)
    raise DataError("Fashion-MNIST file %s(.gz) not found in %s; %s"
                    % (missing, where, INSTALL_HINT))


def read_idx(path, kind):
    """Read one IDX file (plain or gzipped) and check its header against its size.

    Parameters
    ----------
    path : str
    kind : {'images', 'labels'}

    Returns
    -------
    numpy.ndarray of uint8
        ``(N, rows, cols)`` for images, ``(N,)`` for labels.

    Raises
    ------
    DataError
        Unreadable file, wrong magic number, or fewer / more bytes than the header announces.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError("cannot read Fashion-MNIST file %s (%s); %s"
                        % (path, str(err).splitlines()[0] if str(err) else type(err).__name__,
                           INSTALL_HINT)) from None
    expected = _IMAGE_MAGIC if kind == "images" else _LABEL_MAGIC
    header = 16 if kind == "images" else 8
    if len(raw) < header:
        raise DataError("Fashion-MNIST file %s is truncated: %d bytes, shorter than its %d-byte "
                        "header; %s" % (path, len(raw), header, INSTALL_HINT))
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected:
        raise DataError("%s is not an IDX %s file: magic number %d, expected %d; %s"
                        % (path, kind, magic, expected, INSTALL_HINT))
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big")
            for i in range(3 if kind == "images" else 1)]
    size = int(np.prod(dims))
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "longer than its header says"
        raise DataError("Fashion-MNIST file %s is %s: %d data bytes for %s = %d; %s"
                        % (path, state, len(raw) - header, " x ".join(map(str, dims)), size,
                           INSTALL_HINT))
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(data_dir=None):
    """The four files, checked, as arrays (cached per folder and file modification times).

    Returns
    -------
    dict
        ``train_images`` (60000, 28, 28), ``train_labels`` (60000,), ``test_images``,
        ``test_labels`` (uint8 arrays, read-only), ``root`` (the folder), ``digest`` (SHA-256
        of the four decompressed files, first 16 hex digits: the same for Debian's and the
        upstream files).

    Raises
    ------
    DataError
        A missing, truncated or corrupt file, labels outside 0..9, or image and label files
        of different lengths.
    """
    root = find_data_dir(data_dir)
    paths = {key: _file_in(root, stem) for key, stem in FASHION_MNIST_FILES.items()}
    stamp = tuple((paths[k], os.path.getmtime(paths[k]), os.path.getsize(paths[k]))
                  for k in sorted(paths))
    return _load(root, stamp)


@functools.lru_cache(maxsize=2)
def _load(root, stamp):
    paths = dict(zip(sorted(FASHION_MNIST_FILES), (entry[0] for entry in stamp)))
    out, digest = {"root": root}, hashlib.sha256()
    for split in ("train", "test"):
        images = read_idx(paths[split + "_images"], "images")
        labels = read_idx(paths[split + "_labels"], "labels")
        if len(images) != len(labels):
            raise DataError("Fashion-MNIST %s split: %s holds %d images but %s holds %d labels; "
                            "%s" % (split, paths[split + "_images"], len(images),
                                    paths[split + "_labels"], len(labels), INSTALL_HINT))
        if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise DataError("Fashion-MNIST file %s holds label %d; the 10 classes are 0..9; %s"
                            % (paths[split + "_labels"], int(labels.max()), INSTALL_HINT))
        out[split + "_images"], out[split + "_labels"] = images, labels
        digest.update(images.tobytes())
        digest.update(labels.tobytes())
    out["digest"] = digest.hexdigest()[:16]
    logger.info("Fashion-MNIST from %s: %d training / %d test images (content digest %s)",
                root, len(out["train_labels"]), len(out["test_labels"]), out["digest"])
    return out


def to_network_input(images, input_size=32):
    """``(N, 28, 28)`` grey uint8 -> ``(N, S, S, 3)`` uint8: zero-padded to 32 px, channels
    repeated; another size ``S`` resizes the padded image (bilinear)."""
    images = np.asarray(images)
    pad = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    if int(input_size) != 32:
        import cv2  # heavy: opencv, loaded only for image work
        pad = np.stack([cv2.resize(im, (int(input_size),) * 2, interpolation=cv2.INTER_LINEAR)
                        for im in pad]) if len(pad) else \
            np.zeros((0, int(input_size), int(input_size)), np.uint8)
    return np.ascontiguousarray(np.repeat(pad[..., None], 3, axis=3))


def stratified_subset(labels, positions, count, seed=_SUBSET_SEED):
    """``count`` of ``positions``, the same number from every class (sorted, seeded).

    Parameters
    ----------
    labels : array of int
        Labels of the whole file.
    positions : array of int
        The candidates (the training file minus the held-out split).
    count : int
        Images to keep; 0 or at least ``len(positions)`` keeps them all.

    Raises
    ------
    ValueError
        ``count`` not a multiple of the class count, or more than a class has.
    """
    positions = np.asarray(positions, dtype=np.int64)
    count = int(count)
    if count <= 0 or count >= len(positions):
        return positions
    classes = np.unique(np.asarray(labels)[positions])
    if count % len(classes):
        raise ValueError("--train-subset %d must be a multiple of the %d classes"
                         % (count, len(classes)))
    per_class = count // len(classes)
    rng = np.random.RandomState(seed)
    keep = []
    for cls in classes:
        members = positions[np.asarray(labels)[positions] == cls]
        if len(members) < per_class:
            raise ValueError("--train-subset %d needs %d images of class %d, only %d remain "
                             "after the held-out split" % (count, per_class, cls, len(members)))
        keep.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(keep))
