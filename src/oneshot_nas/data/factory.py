"""``make_loaders``: one entry point from data flags to (train, val, DataInfo).

:func:`make_split_loaders` checks the arguments and hands them to one builder per source:
synthetic tensors, Fashion-MNIST in memory, and the digits cache or your ImageNet-style data,
either of which is read as RecordIO files or as an image folder.
"""
import logging
import os
from dataclasses import dataclass

import numpy as np
from mxnet.gluon.data.vision import ImageFolderDataset

from .digits import prepare_digits
from .errors import DataError
from .fashion_mnist import (FASHION_MNIST_CLASSES, load_fashion_mnist, stratified_subset,
                            to_network_input)
from .loaders import (FolderLoader, MemoryLoader, RecordLoader, RecordSubsetLoader,
                      SyntheticLoader, decode_records)
from .recordio import read_index, read_labels, read_lst
from .splits import HOLDOUT_SEED, holdout_split, split_digest
from .transforms import (IMAGENET_MEAN, IMAGENET_STD, digits_shift, folder_transform,
                         record_augmentation)

__all__ = ["DataInfo", "Splits", "make_loaders", "make_split_loaders", "scan_image_folder",
           "reduced_subset", "DATASETS", "SMALL_DATASETS", "default_input_size",
           "DEFAULT_IMAGENET_DIR"]

logger = logging.getLogger(__name__)

DATASETS = ("imagenet", "digits", "fashion-mnist", "synthetic")
# Where --dataset imagenet looks for its image folder when no --data-dir is given.
DEFAULT_IMAGENET_DIR = os.path.join("~", ".mxnet", "datasets", "imagenet")
# The size at which the small bundled / packaged data sets are trained by default.
SMALL_DATASETS = {"digits": 32, "fashion-mnist": 32}
# The reduced training subset must not move with --seed: fixed seed of its own.
_SUBSET_SEED = 1234
_SYNTHETIC_CLASSES = 1000


@dataclass(frozen=True)
class DataInfo:
    """What the model and the schedules need to know about the data.

    Attributes
    ----------
    num_classes : int
    num_train : int
        Training images in use per epoch over all shards (after ``reduced_dataset_scale``,
        before dropping last partial batches).
    num_val : int
        Validation images over all shards.
    input_size : int
    mean, std : tuple of 3 floats
        Normalisation, RGB, on the 0..255 pixel scale.
    source : str
        ``'recordio'``, ``'folder'`` or ``'synthetic'``.
    classes : tuple of str
        Class folder names (image folders only).
    num_holdout : int
        Training images held out for the search (:mod:`.splits`); not in ``num_train``.
    holdout_digest : str
        Digest of the held-out images' identities (empty without a held-out split).
    """

    num_classes: int
    num_train: int
    num_val: int
    input_size: int
    mean: tuple
    std: tuple
    source: str = ""
    classes: tuple = ()
    num_holdout: int = 0
    holdout_digest: str = ""

    def split_record(self):
        """The held-out split as a JSON-able dict (saved with a supernet, checked by a search)."""
        return {"holdout": self.num_holdout, "seed": HOLDOUT_SEED if self.num_holdout else None,
                "digest": self.holdout_digest or None, "source": self.source}


@dataclass(frozen=True)
class Splits:
    """What :func:`make_split_loaders` returns.

    Attributes
    ----------
    train : EpochLoader
        The training split minus the held-out images.
    holdout : EpochLoader or None
        The held-out training images through the validation pipeline (None without
        ``holdout``).
    val : EpochLoader
        The validation split.
    info : DataInfo
    """

    train: object
    holdout: object
    val: object
    info: DataInfo


def scan_image_folder(root):
    """List an ImageNet-style folder: ``root/train/<class>/*`` and ``root/val/<class>/*``.

    Parameters
    ----------
    root : str

    Returns
    -------
    dict
        ``'train'`` and ``'val'``: lists of ``(path, class index)``; ``'classes'``: the
        sorted class folder names.

    Raises
    ------
    DataError
        A missing split folder, no class folders, an empty class folder, or a class folder
        present in one split and missing in the other.
    """
    if not root:
        raise DataError("no image folder given (expected a folder with train/ and val/)")
    root = os.path.abspath(os.path.expanduser(str(root)))
    found = {}
    for split in ("train", "val"):
        path = os.path.join(root, split)
        if not os.path.isdir(path):
            raise DataError("image folder not found: %s (expected train/ and val/ with one "
                            "sub-folder per class)" % path)
        dataset = ImageFolderDataset(path)
        if not dataset.synsets:
            raise DataError("no class folders in %s" % path)
        counts = np.bincount([label for _, label in dataset.items],
                             minlength=len(dataset.synsets))
        if counts.min() == 0:
            raise DataError("empty class folder: %s"
                            % os.path.join(path, dataset.synsets[int(np.argmin(counts))]))
        found[split] = dataset
    train, val = found["train"], found["val"]
    if train.synsets != val.synsets:
        missing = sorted(set(train.synsets) - set(val.synsets))
        split, name = ("val", missing[0]) if missing else \
            ("train", sorted(set(val.synsets) - set(train.synsets))[0])
        raise DataError("class folder missing: %s" % os.path.join(root, split, name))
    return {"train": list(train.items), "val": list(val.items),
            "classes": tuple(train.synsets)}


def reduced_subset(num_images, scale):
    """The fixed ``1/scale`` share of ``num_images`` training items (sorted indices).

    Parameters
    ----------
    num_images : int
    scale : int

    Returns
    -------
    numpy.ndarray of int64
    """
    if scale == 1:
        return np.arange(num_images)
    keep = num_images // scale
    return np.sort(np.random.RandomState(_SUBSET_SEED).permutation(num_images)[:keep])


def default_input_size(dataset):
    """The input size a data set is trained at when ``--input-size`` is not given."""
    return SMALL_DATASETS.get(dataset, 224)


def _check_arguments(dataset, batch_size, num_parts, part_index, reduced_dataset_scale,
                     input_size, dtype):
    if dataset not in DATASETS:
        raise ValueError("unknown dataset %r, expected one of %s"
                         % (dataset, ", ".join(DATASETS)))
    if int(batch_size) < 1:
        raise ValueError("batch size must be at least 1, got %r" % (batch_size,))
    if int(num_parts) < 1 or not 0 <= int(part_index) < int(num_parts):
        raise ValueError("part index %r must be in 0..num_parts-1 (num_parts %r)"
                         % (part_index, num_parts))
    if int(reduced_dataset_scale) < 1:
        raise ValueError("reduced dataset scale must be an integer >= 1, got %r"
                         % (reduced_dataset_scale,))
    if int(input_size) < 1:
        raise ValueError("input size must be positive, got %r" % (input_size,))
    if str(np.dtype(dtype)) not in ("float32", "float16"):
        raise ValueError("dtype must be float32 or float16, got %r" % (dtype,))


def _rec_num_classes(train_index, val_index):
    """Class count of RecordIO data: from the training ``.lst`` beside the ``.rec`` if it
    lists every record, else from the labels of the validation records."""
    lst = os.path.splitext(train_index.rec_path)[0] + ".lst"
    if os.path.isfile(lst):
        _, labels, _ = read_lst(lst)
        if len(labels) == len(train_index):
            return int(labels.max()) + 1
    logger.info("counting classes from the labels in %s", val_index.rec_path)
    return int(read_labels(val_index).max()) + 1


def make_loaders(dataset="imagenet", **kwargs):
    """Build the training and validation loaders: ``(train, val, info)``.

    Same parameters as :func:`make_split_loaders`; with ``holdout`` the held-out images are
    left out of ``train`` (use :func:`make_split_loaders` to read them).
    """
    splits = make_split_loaders(dataset, **kwargs)
    return splits.train, splits.val, splits.info


def make_split_loaders(dataset="imagenet", data_dir=None, use_rec=None, rec_train=None,
                       rec_train_idx=None, rec_val=None, rec_val_idx=None, batch_size=64,
                       num_workers=4, input_size=None, crop_ratio=0.875, augment=True,
                       reduced_dataset_scale=1, num_parts=1, part_index=0, seed=0,
                       synthetic_size=None, dtype="float32", num_classes=None, cache_dir=None,
                       val_batch_size=None, holdout=0, train_subset=0):
    """Build the training, held-out (search) and validation loaders.

    Parameters
    ----------
    dataset : {'imagenet', 'digits', 'fashion-mnist', 'synthetic'}
        ``'imagenet'``: your data, RecordIO files or an ImageNet-style folder, with ImageNet
        augmentations. ``'digits'``: scikit-learn's handwritten digits, prepared once by
        :func:`prepare_digits` in the cache. ``'fashion-mnist'``: the four official IDX files
        (:mod:`.fashion_mnist`; the test file is the validation split). ``'synthetic'``: fixed
        random tensors.
    data_dir : str, optional
        Folder with ``train/`` and ``val/`` (one sub-folder per class) for ``'imagenet'``; the
        folder of the IDX files for ``'fashion-mnist'`` (default: Debian's, then MXNet's).
    use_rec : bool or None
        True: read RecordIO files; False: read image folders. None (default): RecordIO for
        ``'digits'`` (decoding in C++ threads), and for ``'imagenet'`` when ``rec_train`` is
        given and ``data_dir`` is not.
    rec_train, rec_train_idx, rec_val, rec_val_idx : str, optional
        RecordIO files (``'imagenet'`` only); an ``.idx`` defaults to the ``.rec`` path with
        the extension ``.idx``.
    batch_size : int
        Images per batch per worker (shard).
    num_workers : int
        Decoding threads (RecordIO) or processes (folders; 0 decodes in the caller).
    input_size : int, optional
        Default :func:`default_input_size` (224; 32 for digits and fashion-mnist).
    crop_ratio : float
        Validation centre crop (ImageNet style): resize to ``ceil(input_size / crop_ratio)``.
        Unused for digits, whose images already have the input size.
    augment : bool
        Random training augmentation; False feeds training images through the validation
        pipeline (e.g. for BN recalibration).
    reduced_dataset_scale : int
        Train on a fixed ``1/k`` of the training set.
    num_parts, part_index : int
        Horovod sharding: this worker reads part ``part_index`` of ``num_parts`` of the
        training and of the validation set.
    seed : int
        Shuffling and augmentation seeds derive from ``(seed, epoch)``.
    synthetic_size : int, optional
        ``'synthetic'``: training images (default ``4 * batch_size``); validation gets a
        quarter of them, at least one batch.
    dtype : {'float32', 'float16'}
        Type of the yielded image tensors (labels stay float32).
    num_classes : int, optional
        Override the class count (RecordIO data without a ``.lst``; synthetic data,
        default 1000).
    cache_dir : str, optional
        ``'digits'``: the cache folder (default ``$ONESHOT_NAS_CACHE`` or
        ``~/.cache/oneshot_nas``).
    val_batch_size : int, optional
        Default: ``batch_size``.
    holdout : int
        Hold this many training images out of ``train`` (the fixed seeded subset of
        :func:`.splits.holdout_split`) and yield them, through the validation pipeline, as
        ``holdout``: the search scores candidates on them. RecordIO training files are then
        read by gluon workers (:class:`RecordSubsetLoader`) instead of ImageRecordIter, which
        cannot skip records. ``reduced_dataset_scale`` applies to the remaining images.

    Returns
    -------
    Splits
        ``train``, ``holdout`` (None without ``holdout``), ``val``: ``for data, label in
        train`` runs one epoch; ``len(train)`` is its number of batches, ``train.set_epoch(e)``
        selects the epoch the next iteration runs. ``info``: :class:`DataInfo`.

    Raises
    ------
    DataError
        Missing or corrupt data files (a subclass of ValueError; one line naming the file).
    ValueError
        Invalid arguments.
    """
    if input_size is None:
        input_size = default_input_size(dataset)
    _check_arguments(dataset, batch_size, num_parts, part_index, reduced_dataset_scale,
                     input_size, dtype)
    if train_subset and dataset != "fashion-mnist":
        raise ValueError("--train-subset applies to --dataset fashion-mnist only; use "
                         "--reduced-dataset-scale for %s" % dataset)
    holdout = int(holdout or 0)
    if holdout < 0:
        raise ValueError("--holdout-search must be >= 0, got %d" % holdout)
    batch_size, input_size = int(batch_size), int(input_size)
    num_parts, part_index = int(num_parts), int(part_index)
    scale = int(reduced_dataset_scale)
    val_batch_size = int(val_batch_size or batch_size)
    dtype = str(np.dtype(dtype))
    shard = dict(num_parts=num_parts, part_index=part_index, seed=seed, dtype=dtype)
    sizes = dict(batch_size=batch_size, val_batch_size=val_batch_size, input_size=input_size,
                 holdout=holdout, shard=shard)
    if dataset == "synthetic":
        splits = _synthetic_splits(int(synthetic_size or 4 * batch_size),
                                   int(num_classes or _SYNTHETIC_CLASSES), **sizes)
    elif dataset == "fashion-mnist":
        splits = _fashion_mnist_splits(data_dir, augment, scale, int(train_subset or 0), **sizes)
    else:
        if dataset == "digits":
            source = _digits_source(data_dir, use_rec, num_classes, input_size, cache_dir)
        else:
            source = _imagenet_source(data_dir, use_rec, rec_train, rec_train_idx, rec_val,
                                      rec_val_idx, num_classes)
        build = _record_splits if source["use_rec"] else _folder_splits
        splits = build(dataset, source, crop_ratio, augment, scale, num_workers, **sizes)
    _log_summary(dataset, splits.info, splits.train, num_parts, part_index)
    return splits


def _synthetic_splits(size, classes, batch_size, val_batch_size, input_size, holdout, shard):
    """Fixed random tensors: ``size`` training images, a quarter of them (at least one batch)
    for validation, ``holdout`` more held out."""
    seed, dtype = shard["seed"] * 1000 + shard["part_index"], shard["dtype"]
    # Different random images per shard, as real shards differ.
    train = SyntheticLoader(size, classes, input_size, batch_size, True, seed=seed, dtype=dtype)
    val = SyntheticLoader(max(val_batch_size, size // 4), classes, input_size, val_batch_size,
                          False, seed=seed, dtype=dtype)
    held = None
    if holdout:
        held = SyntheticLoader(holdout, classes, input_size, val_batch_size, False,
                               seed=seed + 500, dtype=dtype)
    num_parts = shard["num_parts"]
    info = DataInfo(classes, size * num_parts, val.num_images * num_parts, input_size,
                    (0.0,) * 3, (1.0,) * 3, "synthetic", num_holdout=holdout,
                    holdout_digest=split_digest(range(holdout)) if holdout else "")
    return Splits(train, held, val, info)


def _digits_source(data_dir, use_rec, num_classes, input_size, cache_dir):
    """Where the digits cache (written once by :func:`prepare_digits`) keeps its RecordIO
    files and image folder, and its normalisation."""
    if data_dir:
        logger.debug("dataset 'digits' reads its cache; data_dir %s is not used", data_dir)
    paths = prepare_digits(input_size, cache_dir)
    return dict(use_rec=True if use_rec is None else use_rec,
                rec_train=paths["rec_train"], rec_train_idx=paths["rec_train_idx"],
                rec_val=paths["rec_val"], rec_val_idx=paths["rec_val_idx"],
                data_dir=paths["root"], num_classes=num_classes or paths["num_classes"],
                classes=tuple(str(c) for c in range(paths["num_classes"])),
                mean=tuple(paths["mean"]), std=tuple(paths["std"]))


def _imagenet_source(data_dir, use_rec, rec_train, rec_train_idx, rec_val, rec_val_idx,
                     num_classes):
    """The user's ImageNet-style data: RecordIO files or an image folder."""
    if use_rec is None:
        use_rec = bool(rec_train) and not data_dir
    if not use_rec and not data_dir:
        raise DataError("no data given: pass an image folder (data_dir) or RecordIO files "
                        "(use_rec with rec_train / rec_val)")
    return dict(use_rec=use_rec, rec_train=rec_train, rec_train_idx=rec_train_idx,
                rec_val=rec_val, rec_val_idx=rec_val_idx, data_dir=data_dir,
                num_classes=num_classes, classes=(), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _record_splits(style, source, crop_ratio, augment, scale, num_workers, batch_size,
                   val_batch_size, input_size, holdout, shard):
    """RecordIO files: ImageRecordIter loaders, or, with a held-out split, gluon workers
    reading the kept records (digits: decoded once into memory)."""
    mean, std = source["mean"], source["std"]
    train_index = read_index(source["rec_train"], source["rec_train_idx"],
                             "training RecordIO file")
    val_index = read_index(source["rec_val"], source["rec_val_idx"], "validation RecordIO file")
    num_classes = int(source["num_classes"] or _rec_num_classes(train_index, val_index))
    held, digest = None, ""
    if holdout:
        kept, held_positions = holdout_split(len(train_index), holdout)
        kept = kept[reduced_subset(len(kept), scale)]
        if style == "digits":
            # 1,438 tiny images: decoded once, batches sliced from memory
            images, labels = decode_records(train_index)
            memory = dict(mean=mean, std=std, name=train_index.rec_path, **shard)
            train = MemoryLoader(images, labels, kept, batch_size, True,
                                 digits_shift(input_size) if augment else 0, **memory)
            held = MemoryLoader(images, labels, held_positions, val_batch_size, False, 0,
                                **memory)
        else:
            train_tf = folder_transform(style, True, input_size, crop_ratio, augment, mean, std)
            val_tf = folder_transform(style, False, input_size, crop_ratio, augment, mean, std)
            train = RecordSubsetLoader(train_index, kept, train_tf, batch_size, True,
                                       num_workers=num_workers, **shard)
            held = RecordSubsetLoader(train_index, held_positions, val_tf, val_batch_size,
                                      False, num_workers=num_workers, **shard)
        digest = split_digest(train_index.keys[held_positions])
    else:
        train = RecordLoader(train_index, batch_size,
                             record_augmentation(style, True, input_size, crop_ratio, augment,
                                                 mean, std),
                             True, subset_parts=scale, num_threads=num_workers, **shard)
    val = RecordLoader(val_index, val_batch_size,
                       record_augmentation(style, False, input_size, crop_ratio, augment, mean,
                                           std),
                       False, num_threads=num_workers, **shard)
    info = DataInfo(num_classes, train.num_records, len(val_index), input_size, mean, std,
                    "recordio", source["classes"], holdout, digest)
    return Splits(train, held, val, info)


def _folder_splits(style, source, crop_ratio, augment, scale, num_workers, batch_size,
                   val_batch_size, input_size, holdout, shard):
    """An image folder with ``train/`` and ``val/``, decoded by gluon workers."""
    data_dir, mean, std = source["data_dir"], source["mean"], source["std"]
    train_tf = folder_transform(style, True, input_size, crop_ratio, augment, mean, std)
    val_tf = folder_transform(style, False, input_size, crop_ratio, augment, mean, std)
    folder = scan_image_folder(data_dir)
    kept, held_positions = holdout_split(len(folder["train"]), holdout)
    subset = kept[reduced_subset(len(kept), scale)]
    train_root = os.path.join(data_dir, "train")
    train = FolderLoader(folder["train"], subset, train_tf, batch_size, True,
                         num_workers=num_workers, name=train_root, **shard)
    held, digest = None, ""
    if holdout:
        held = FolderLoader(folder["train"], held_positions, val_tf, val_batch_size, False,
                            num_workers=num_workers, name=train_root, **shard)
        digest = split_digest(os.path.relpath(folder["train"][i][0], train_root)
                              for i in held_positions)
    val = FolderLoader(folder["val"], np.arange(len(folder["val"])), val_tf, val_batch_size,
                       False, num_workers=num_workers, name=os.path.join(data_dir, "val"),
                       **shard)
    info = DataInfo(int(source["num_classes"] or len(folder["classes"])), len(subset),
                    len(folder["val"]), input_size, mean, std, "folder", folder["classes"],
                    holdout, digest)
    return Splits(train, held, val, info)


def _fashion_mnist_splits(data_dir, augment, scale, train_subset, batch_size, val_batch_size,
                          input_size, holdout, shard):
    """Fashion-MNIST in memory: training (minus the held-out split, optionally a stratified
    subset), held-out and test loaders."""
    data = load_fashion_mnist(data_dir)
    train_images = to_network_input(data["train_images"], input_size)
    labels = data["train_labels"]
    kept, held_positions = holdout_split(len(labels), holdout)
    kept = stratified_subset(labels, kept, train_subset)
    kept = kept[reduced_subset(len(kept), scale)]
    # normalisation from the whole padded training file: one constant per file, whatever the
    # subset, so that a subnet trained on any subset is evaluated with the same numbers
    mean = (float(train_images[..., 0].mean()),) * 3
    std = (float(train_images[..., 0].std()),) * 3
    name = os.path.join(data["root"], "train-images-idx3-ubyte")
    memory = dict(mean=mean, std=std, **shard)
    shift = digits_shift(input_size) if augment else 0      # up to 2 px at 32 px
    train = MemoryLoader(train_images, labels, kept, batch_size, True, shift, name=name, **memory)
    held = None
    if holdout:
        held = MemoryLoader(train_images, labels, held_positions, val_batch_size, False, 0,
                            name=name, **memory)
    val = MemoryLoader(to_network_input(data["test_images"], input_size), data["test_labels"],
                       np.arange(len(data["test_labels"])), val_batch_size, False, 0,
                       name=os.path.join(data["root"], "t10k-images-idx3-ubyte"), **memory)
    digest = split_digest("%s:%d" % (data["digest"], i) for i in held_positions) if holdout \
        else ""
    info = DataInfo(len(FASHION_MNIST_CLASSES), len(kept), len(data["test_labels"]), input_size,
                    mean, std, "idx", FASHION_MNIST_CLASSES, holdout, digest)
    return Splits(train, held, val, info)


def _log_summary(dataset, info, train, num_parts, part_index):
    logger.info("%s (%s): %d training / %d validation images, %d classes, %d x %d px; "
                "shard %d of %d: %d batches of %d per epoch", dataset, info.source,
                info.num_train, info.num_val, info.num_classes, info.input_size,
                info.input_size, part_index + 1, num_parts, len(train), train.batch_size)
    if info.num_holdout:
        logger.info("search split: %d training images held out (fixed seed %d, digest %s): "
                    "the supernet never trains on them and the search scores candidates on "
                    "them; the %d validation images are kept for the final report",
                    info.num_holdout, HOLDOUT_SEED, info.holdout_digest, info.num_val)
