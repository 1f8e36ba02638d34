"""Data layer: scikit-learn digits cache, Fashion-MNIST IDX files, RecordIO and image-folder
loaders, synthetic data.

``make_loaders`` is the one entry point the trainer and the search use; ``prepare_digits``
writes the bundled digits data set once as an image folder and RecordIO files.
"""
from .digits import cache_root, digits_split, prepare_digits
from .errors import DataError
from .factory import (DATASETS, SMALL_DATASETS, DataInfo, Splits, default_input_size,
                      make_loaders, make_split_loaders, reduced_subset, scan_image_folder)
from .fashion_mnist import load_fashion_mnist, read_idx
from .loaders import (EpochLoader, FolderLoader, RecordLoader, RecordSubsetLoader,
                      SyntheticLoader, part_range)
from .splits import HOLDOUT_SEED, holdout_split, split_digest
from .recordio import RecordIndex, read_index, read_labels, read_lst
from .transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["prepare_digits", "make_loaders", "make_split_loaders", "Splits", "DataInfo",
           "DataError", "DATASETS", "SMALL_DATASETS", "default_input_size",
           "load_fashion_mnist", "read_idx", "HOLDOUT_SEED", "holdout_split", "split_digest",
           "RecordSubsetLoader",
           "cache_root", "digits_split", "reduced_subset", "scan_image_folder", "EpochLoader",
           "FolderLoader", "RecordLoader", "SyntheticLoader", "part_range", "RecordIndex",
           "read_index", "read_labels", "read_lst", "IMAGENET_MEAN", "IMAGENET_STD"]
