"""Inference with an exported (float32 or int8) subnet, or its ONNX model: load, preprocess as
validation does, top-k classes.

Every model written by the quantization and ONNX export CLIs has a ``<prefix>-deploy.json`` beside it with the
preprocessing (input size, crop ratio, normalisation, data style) and class names, so that
prediction uses exactly the validation pipeline of the data it was trained on.
"""
import json
import logging
import os

import numpy as np
import mxnet as mx

from ..data.factory import SMALL_DATASETS
from ..data.transforms import folder_transform
from ..records import current_command
from .errors import DeployError

__all__ = ["IMAGE_EXTENSIONS", "DeployMeta", "meta_for_data", "meta_path", "write_meta",
           "read_meta",
           "collect_images", "preprocess", "predict_topk"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DeployMeta(dict):
    """Preprocessing and labels of a deployed model: ``input_size``, ``crop_ratio``, ``mean``,
    ``std`` (RGB, 0..255 scale), ``style`` (``'imagenet'`` or ``'digits'``), ``classes``
    (list of names, may be empty) and free-form provenance fields."""

    DEFAULTS = dict(input_size=224, crop_ratio=0.875, mean=(123.675, 116.28, 103.53),
                    std=(58.395, 57.12, 57.375), style="imagenet", classes=())

    def __init__(self, **kwargs):
        super().__init__(self.DEFAULTS)
        self.update({k: v for k, v in kwargs.items() if v is not None})


def meta_for_data(dataset, info, input_size, crop_ratio, **provenance):
    """The :class:`DeployMeta` of a model trained on ``dataset``: its validation
    preprocessing (size, crop, the data's normalisation and style), class names and
    ``provenance`` (the model, its architecture and shape, ...; ``command``, the command line
    that wrote the file, unless given).

    Parameters
    ----------
    info : DataInfo or None
        The loaders' description of the data (normalisation, class names); None keeps the
        ImageNet normalisation.
    """
    provenance.setdefault("command", current_command())
    classes = list(info.classes) if info is not None and info.classes else []
    if not classes and dataset == "digits":
        classes = [str(i) for i in range(10)]
    return DeployMeta(input_size=int(input_size), crop_ratio=crop_ratio,
                      mean=list(info.mean) if info is not None else None,
                      std=list(info.std) if info is not None else None,
                      style=dataset if dataset in SMALL_DATASETS else "imagenet",
                      classes=classes, dataset=dataset, **provenance)


def meta_path(prefix):
    """``<prefix>-deploy.json``; ``prefix`` may also be a ``-symbol.json`` or ``.onnx`` path."""
    for suffix in ("-symbol.json", ".onnx"):
        if prefix.endswith(suffix):
            prefix = prefix[:-len(suffix)]
    return prefix + "-deploy.json"


def write_meta(prefix, meta):
    """Write :class:`DeployMeta` next to the model files; returns the path."""
    path = meta_path(prefix)
    with open(path, "w") as handle:
        json.dump(dict(meta), handle, indent=2, sort_keys=True)
    return path


def read_meta(prefix):
    """The :class:`DeployMeta` stored beside a model, or None."""
    path = meta_path(prefix)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return DeployMeta(**json.load(handle))
    except (OSError, ValueError) as err:
        raise DeployError("cannot read %s: %s" % (path, err)) from None


def collect_images(paths):
    """Image files named by ``paths`` (files, or folders searched recursively), in order.

    Raises
    ------
    DeployError
        A path that does not exist, or no image at all.
    """
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found.extend(os.path.join(root, name) for name in sorted(files)
                             if name.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise DeployError("no such image file or folder: %s" % path)
    if not found:
        raise DeployError("no image files (%s) in %s"
                          % (", ".join(IMAGE_EXTENSIONS), ", ".join(paths)))
    return found


def preprocess(paths, meta):
    """Decode and transform images exactly like the validation split of the data set.

    Parameters
    ----------
    paths : list of str
    meta : DeployMeta

    Returns
    -------
    NDArray
        ``(N, 3, input_size, input_size)`` float32.
    """
    transform = folder_transform(meta["style"], False, int(meta["input_size"]),
                                 float(meta["crop_ratio"]), False, tuple(meta["mean"]),
                                 tuple(meta["std"]))
    images = []
    for path in paths:
        try:
            image = mx.image.imread(path, flag=1)
        except mx.base.MXNetError:
            raise DeployError("cannot decode image %s" % path) from None
        images.append(transform(image))
    return mx.nd.stack(*images)


def predict_topk(block, data, k=5, batch_size=32, ctx=None):
    """Top-``k`` classes and softmax probabilities.

    Parameters
    ----------
    block : callable
    data : NDArray
        Preprocessed images.
    k : int
    batch_size : int
        Images per forward pass.
    ctx : Context, optional

    Returns
    -------
    list of list of (int, float)
        Per image, ``k`` pairs ``(class index, probability)``, most likely first.
    """
    ctx = ctx or mx.cpu()
    out = []
    for start in range(0, data.shape[0], batch_size):
        scores = block(data[start:start + batch_size].as_in_context(ctx))
        probs = mx.nd.softmax(scores.astype("float32"), axis=1).asnumpy()
        kk = min(k, probs.shape[1])
        top = np.argsort(-probs, axis=1)[:, :kk]
        out.extend([[(int(c), float(p[c])) for c in row] for row, p in zip(top, probs)])
    return out
