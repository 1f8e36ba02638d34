"""Augmentation settings, written once for both pipelines (ImageRecordIter and gluon transforms).

ImageNet (GluonCV's standard recipe): random resized crop (area 0.08-1, aspect 3/4-4/3),
horizontal mirror, colour jitter 0.4 (brightness, contrast, saturation), PCA lighting noise 0.1,
mean / std normalisation; validation: resize the shorter side to ``ceil(input_size /
crop_ratio)`` and take the centre crop.

Digits: the images are already ``input_size`` square and the classes are not mirror-symmetric,
so training only shifts the image by up to ``input_size // 16`` pixels (zero padding, then a
random crop back to size: half a pixel of the 8x8 original); validation uses the image as it is.
"""
import math
import os
import random

import mxnet as mx
import numpy as np
from mxnet.gluon.data.vision import transforms

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "JITTER", "LIGHTING", "MIN_AREA", "ASPECT_RATIOS",
           "digits_shift", "val_resize", "record_augmentation", "folder_transform",
           "RandomShift", "PadTo"]

# Pixel scale 0..255, RGB.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
JITTER = 0.4
LIGHTING = 0.1
MIN_AREA = 0.08
ASPECT_RATIOS = (3.0 / 4.0, 4.0 / 3.0)


def digits_shift(input_size):
    """Largest shift in pixels of the digits training augmentation."""
    return max(1, int(input_size) // 16)


def val_resize(input_size, crop_ratio):
    """Shorter side before the validation centre crop: ``ceil(input_size / crop_ratio)``."""
    if not 0 < crop_ratio <= 1:
        raise ValueError("crop ratio must be in (0, 1], got %r" % (crop_ratio,))
    return int(math.ceil(input_size / crop_ratio))


def _normalisation(mean, std):
    return {"mean_r": mean[0], "mean_g": mean[1], "mean_b": mean[2],
            "std_r": std[0], "std_g": std[1], "std_b": std[2]}


def record_augmentation(style, train, input_size, crop_ratio, augment, mean, std):
    """Keyword arguments of ``mx.io.ImageRecordIter`` for one split.

    Parameters
    ----------
    style : {'imagenet', 'digits'}
    train : bool
        Training split (random augmentation when ``augment``) or validation split.
    input_size : int
    crop_ratio : float
        Validation centre-crop ratio (ImageNet style only).
    augment : bool
        False gives the validation pipeline for the training split as well.
    mean, std : sequence of 3 floats
        Per-channel statistics on the 0..255 scale.

    Returns
    -------
    dict
    """
    kwargs = {"data_shape": (3, input_size, input_size)}
    kwargs.update(_normalisation(mean, std))
    if style == "digits":
        if train and augment:
            kwargs.update(pad=digits_shift(input_size), fill_value=0, rand_crop=True)
        else:
            kwargs.update(resize=input_size)
        return kwargs
    if train and augment:
        kwargs.update(random_resized_crop=True, min_random_area=MIN_AREA, max_random_area=1.0,
                      min_aspect_ratio=ASPECT_RATIOS[0], max_aspect_ratio=ASPECT_RATIOS[1],
                      rand_mirror=True, brightness=JITTER, contrast=JITTER,
                      saturation=JITTER, pca_noise=LIGHTING)
    else:
        # Without rand_crop ImageRecordIter takes the centre crop of `data_shape`.
        kwargs.update(resize=val_resize(input_size, crop_ratio))
    return kwargs


class RandomShift:
    """Zero-pad an HWC uint8 image by ``pad`` pixels and crop ``size`` at a random position."""

    def __init__(self, size, pad):
        self.size = int(size)
        self.pad = int(pad)

    def __call__(self, image):
        height, width = image.shape[:2]
        if (height, width) != (self.size, self.size):
            image = mx.image.imresize(image, self.size, self.size)
        padded = mx.image.copyMakeBorder(image, self.pad, self.pad, self.pad, self.pad,
                                         type=0, value=0)
        x0 = random.randint(0, 2 * self.pad)
        y0 = random.randint(0, 2 * self.pad)
        return mx.image.fixed_crop(padded, x0, y0, self.size, self.size)


class PadTo:
    """Zero-pad a smaller image to ``pad_size`` (centred; Fashion-MNIST's 28 -> 32 px), then
    resize to ``size`` if that differs; larger images are resized."""

    def __init__(self, size, pad_size=32):
        self.size, self.pad_size = int(size), int(pad_size)

    def __call__(self, image):
        height, width = image.shape[:2]
        if height < self.pad_size and width < self.pad_size:
            top, left = (self.pad_size - height) // 2, (self.pad_size - width) // 2
            image = mx.image.copyMakeBorder(image, top, self.pad_size - height - top, left,
                                            self.pad_size - width - left, type=0, value=0)
        if image.shape[0] != self.size or image.shape[1] != self.size:
            image = mx.image.imresize(image, self.size, self.size)
        return image


class _Pipeline:
    """Apply callables in turn (gluon's Compose accepts only Blocks)."""

    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, image):
        for step in self.steps:
            image = step(image)
        return image


def folder_transform(style, train, input_size, crop_ratio, augment, mean, std):
    """The gluon transform (HWC uint8 NDArray -> CHW float32 NDArray) for one split.

    Same parameters and the same augmentations as :func:`record_augmentation`.

    Returns
    -------
    callable
    """
    steps = []
    if style == "digits":
        if train and augment:
            steps.append(RandomShift(input_size, digits_shift(input_size)))
        else:
            steps.append(transforms.Resize(input_size))
    elif style == "fashion-mnist":         # image files of the padded in-memory pipeline
        steps.append(PadTo(input_size))
        if train and augment:
            steps.append(RandomShift(input_size, digits_shift(input_size)))
    elif train and augment:
        steps += [transforms.RandomResizedCrop(input_size, scale=(MIN_AREA, 1.0),
                                               ratio=ASPECT_RATIOS),
                  transforms.RandomFlipLeftRight(),
                  transforms.RandomColorJitter(brightness=JITTER, contrast=JITTER,
                                               saturation=JITTER),
                  transforms.RandomLighting(LIGHTING)]
    else:
        steps += [transforms.Resize(val_resize(input_size, crop_ratio), keep_ratio=True),
                  transforms.CenterCrop(input_size)]
    steps += [transforms.ToTensor(),
              transforms.Normalize([m / 255.0 for m in mean], [s / 255.0 for s in std])]
    return _Pipeline(steps)


def reseed_worker(seed):
    """Give a forked loader process its own random streams (python, numpy, mxnet).

    Forked DataLoader workers inherit the parent's generator states and would otherwise draw
    the same augmentations.
    """
    state = np.random.SeedSequence([int(seed), os.getpid()]).generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    mx.random.seed(int(state[1]) % (2 ** 31))
