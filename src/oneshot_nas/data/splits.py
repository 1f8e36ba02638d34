"""Which training images are held out for the search: the one place that decides it.

SPOS scores search candidates on images split off from the training set (50,000 ImageNet
training images) and keeps the validation split for the final report, which neither the
supernet nor the search has seen. Here the held-out part is a fixed, seeded subset of the
training items, by position in the order the data layer lists them: ``.idx`` order for
RecordIO files, sorted ``class/file`` order for image folders. Its seed is a constant of its
own (not ``--seed``), so the supernet trainer and the search, run with the same
``holdout`` count, always pick the same images; a digest of the images' identities (record keys
or relative paths) travels with the supernet so that the search can check it.
"""
import hashlib

import numpy as np

__all__ = ["HOLDOUT_SEED", "holdout_split", "split_digest"]

# Never change: a supernet trained with one seed must be searched with the same held-out set.
HOLDOUT_SEED = 5000


def holdout_split(num_train, holdout, seed=HOLDOUT_SEED):
    """Split training positions ``0..num_train-1`` into (kept for training, held out).

    Parameters
    ----------
    num_train : int
        Training items in the data source.
    holdout : int
        Items held out for the search (0: none).
    seed : int
        Fixed; the default is the only value the trainer and the search use.

    Returns
    -------
    train, held_out : numpy.ndarray of int64
        Sorted, disjoint, together ``0..num_train-1``.

    Raises
    ------
    ValueError
        ``holdout`` negative or not smaller than ``num_train``.
    """
    num_train, holdout = int(num_train), int(holdout)
    if holdout < 0 or holdout >= num_train:
        raise ValueError("--holdout-search %d must be in 0..%d (the training split holds %d "
                         "images)" % (holdout, num_train - 1, num_train))
    if holdout == 0:
        return np.arange(num_train, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.random.RandomState(int(seed)).permutation(num_train)
    return np.sort(order[holdout:]).astype(np.int64), np.sort(order[:holdout]).astype(np.int64)


def split_digest(identities):
    """Short hex digest of the held-out images' identities (record keys or relative paths).

    Two runs that hold out the same images get the same digest whatever their order.
    """
    text = "\n".join(sorted(str(i) for i in identities))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
