"""Argument pieces the training and search commands share (commands import this, never each
other): where the data comes from, and the input it is turned into."""
import os

from ..data.factory import DATASETS, DEFAULT_IMAGENET_DIR, default_input_size
from ..data.fashion_mnist import DEBIAN_DIR

__all__ = ["add_data_source_arguments", "add_input_arguments", "fill_data_defaults"]

_REC = os.path.join("~", ".mxnet", "datasets", "imagenet", "rec")


def add_data_source_arguments(group):
    """``--dataset``, ``--data-dir``, the ``--rec-*`` files and ``--use-rec``."""
    group.add_argument("--dataset", default="imagenet", choices=DATASETS,
                       help="imagenet: --use-rec or --data-dir; digits: the bundled "
                            "scikit-learn digits; fashion-mnist: the IDX files (Debian's "
                            "dataset-fashion-mnist, or --data-dir); synthetic: random tensors "
                            "for speed checks")
    group.add_argument("--data-dir", default=None,
                       help="ImageNet-style folder with train/ and val/ (default %s); "
                            "fashion-mnist: the folder of its IDX files (default %s, then "
                            "~/.mxnet/datasets/fashion-mnist)" % (DEFAULT_IMAGENET_DIR, DEBIAN_DIR))
    for flag, name in (("--rec-train", "train.rec"), ("--rec-train-idx", "train.idx"),
                       ("--rec-val", "val.rec"), ("--rec-val-idx", "val.idx")):
        group.add_argument(flag, default=os.path.expanduser(os.path.join(_REC, name)))
    group.add_argument("--use-rec", action="store_true", help="read ImageNet from RecordIO")


def add_input_arguments(group):
    """``--input-size``, ``--crop-ratio`` and ``--train-subset``."""
    group.add_argument("--input-size", type=int, default=None,
                       help="default 224 (ImageNet) or 32 (digits, fashion-mnist)")
    group.add_argument("--crop-ratio", type=float, default=0.875)
    group.add_argument("--train-subset", type=int, default=0, metavar="N",
                       help="fashion-mnist: train on a fixed stratified subset of N training "
                            "images (0: all that the held-out split leaves)")


def fill_data_defaults(values):
    """Defaults that depend on ``values['dataset']``: input size, ImageNet folder."""
    if values.get("input_size") is None:
        values["input_size"] = default_input_size(values["dataset"])
    if values.get("data_dir") is None and values["dataset"] == "imagenet":
        values["data_dir"] = os.path.expanduser(DEFAULT_IMAGENET_DIR)
    return values
