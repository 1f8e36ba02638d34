"""Epoch-aware loaders over RecordIO files, image folders and synthetic tensors.

Every loader is an iterable: ``for data, label in loader`` runs one epoch and yields NCHW
float NDArrays and float32 class indices in CPU memory (``mx.cpu()`` on a machine without GPUs;
pinned or shared memory on a GPU machine, for ``split_and_load``); iterating again runs the
next epoch.
Training loaders reshuffle every epoch from ``(seed, epoch)`` only, so a resumed run that calls
``set_epoch(e)`` sees the same order as an uninterrupted one; they drop the last partial batch,
and every shard yields the same number of batches (Horovod workers stay in lock step).
Validation loaders keep the last partial batch: it is simply smaller (no padding to count).
"""
import logging
import math
import os

import mxnet as mx
import numpy as np
from mxnet import gluon

from .errors import DataError
from .recordio import _read_record
from .transforms import reseed_worker

__all__ = ["EpochLoader", "RecordLoader", "RecordSubsetLoader", "MemoryLoader", "FolderLoader",
           "SyntheticLoader", "part_range", "epoch_seed", "decode_records"]

logger = logging.getLogger(__name__)


def epoch_seed(seed, epoch, stream=0):
    """A 31-bit seed derived from ``(seed, epoch, stream)`` only."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(stream)])
               .generate_state(1)[0] % (2 ** 31 - 1))


def part_range(num_records, num_parts, part_index):
    """``(start, stop)`` of part ``part_index`` of ``num_parts`` of a RecordIO index.

    Same rule as dmlc-core's indexed RecordIO splitter used by ``ImageRecordIter``: parts of
    ``ceil(n / num_parts)`` consecutive records, the last ones shorter or empty.
    """
    step = -(-num_records // num_parts)
    return min(step * part_index, num_records), min(step * (part_index + 1), num_records)


def _part_size(num_records, num_parts, part_index):
    start, stop = part_range(num_records, num_parts, part_index)
    return stop - start


def _plain_cpu():
    """True when batches should be moved to ``mx.cpu()``: on a machine without GPUs.

    ImageRecordIter yields pinned and the multi-process DataLoader shared memory; a hybridized
    network on ``mx.cpu()`` refuses both, while on a GPU machine ``split_and_load`` copies them
    to the devices directly (faster from pinned memory), so they are left as they are there.
    """
    return mx.context.num_gpus() == 0


def _finish(data, label, dtype, to_cpu):
    if to_cpu:
        if data.context != mx.cpu():
            data = data.as_in_context(mx.cpu())
        if label.context != mx.cpu():
            label = label.as_in_context(mx.cpu())
    if dtype != "float32":
        data = data.astype(dtype, copy=False)
    return data, label


class EpochLoader:
    """Base class: epoch counter, ``len`` in batches, per-shard image count.

    Attributes
    ----------
    batch_size : int
    num_images : int
        Images this shard yields per epoch.
    epoch : int
        The epoch the next ``iter()`` runs.
    """

    def __init__(self, batch_size, num_batches, num_images, dtype):
        self.batch_size = int(batch_size)
        self.num_images = int(num_images)
        self.epoch = 0
        self._num_batches = int(num_batches)
        self._dtype = str(np.dtype(dtype))
        self._to_cpu = _plain_cpu()

    def __len__(self):
        return self._num_batches

    def set_epoch(self, epoch):
        """Make the next ``iter()`` run epoch ``epoch`` (its shuffle and augmentation seeds)."""
        self.epoch = int(epoch)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._run(epoch)

    def _run(self, epoch):
        raise NotImplementedError


def _shard_init(loader, indices, batch_size, train, num_parts, part_index, seed, dtype, name):
    """Shard sampler, record count and epoch bookkeeping of a loader over indexed images."""
    loader._sampler = _ShardBatchSampler(indices, batch_size, train, num_parts, part_index, seed)
    loader.num_records = len(loader._sampler.indices)
    if train and len(loader._sampler) == 0:
        raise DataError("%s: a shard holds %d training images, fewer than the batch size %d"
                        % (name, loader._sampler.shard_size, batch_size))
    num_images = (len(loader._sampler) * batch_size if train else loader._sampler.shard_size)
    EpochLoader.__init__(loader, batch_size, len(loader._sampler), num_images, dtype)


class RecordLoader(EpochLoader):
    """``mx.io.ImageRecordIter`` over an indexed ``.rec`` file (decoding in C++ threads).

    Parameters
    ----------
    index : RecordIndex
        The checked ``.rec`` / ``.idx`` pair.
    batch_size : int
    augmentation : dict
        ImageRecordIter keyword arguments (shape, normalisation, augmenters).
    train : bool
        Shuffle per epoch and drop the last partial batch; else keep file order and yield the
        last partial batch at its real size.
    num_parts, part_index : int
        Shard of the file this loader reads (contiguous records, as ImageRecordIter splits).
    subset_parts : int
        Split the file into ``num_parts * subset_parts`` parts and read only the first
        ``num_parts`` of them (``reduced_dataset_scale``).
    num_threads : int
        Decoding threads.
    seed : int
    dtype : str
    """

    def __init__(self, index, batch_size, augmentation, train, num_parts=1, part_index=0,
                 subset_parts=1, num_threads=4, seed=0, dtype="float32"):
        self._index = index
        self._train = bool(train)
        self._augmentation = dict(augmentation)
        self._threads = max(1, int(num_threads))
        self._seed = int(seed)
        self._parts = int(num_parts) * int(subset_parts)
        self._part_index = int(part_index)
        start, stop = part_range(len(index), self._parts, self._part_index)
        size = stop - start
        sizes = [_part_size(len(index), self._parts, i) for i in range(int(num_parts))]
        # Records read per epoch by all shards together.
        self.num_records = sum(sizes)
        if self._train:
            smallest = min(sizes)
            if smallest < batch_size:
                raise DataError("%s: a shard holds %d training images, fewer than the batch "
                                "size %d (%d records, %d shards, reduced scale %d)"
                                % (index.rec_path, smallest, batch_size, len(index),
                                   num_parts, subset_parts))
            num_batches = smallest // batch_size
            num_images = num_batches * batch_size
        else:
            # ImageRecordIter needs at least one full batch per part.
            batch_size = max(1, min(batch_size, size))
            num_batches = math.ceil(size / batch_size)
            num_images = size
        super().__init__(batch_size, num_batches, num_images, dtype)
        self._val_iter = None

    def _make_iter(self, epoch):
        return mx.io.ImageRecordIter(
            path_imgrec=self._index.rec_path, path_imgidx=self._index.idx_path,
            batch_size=self.batch_size, preprocess_threads=self._threads,
            num_parts=self._parts, part_index=self._part_index, shuffle=self._train,
            seed=epoch_seed(self._seed, epoch, 0), seed_aug=epoch_seed(self._seed, epoch, 1),
            round_batch=self._train, verbose=False, **self._augmentation)

    def _run(self, epoch):
        if len(self) == 0:
            return
        try:
            if self._train:
                # A fresh iterator per epoch: its order depends on (seed, epoch) only.
                source = self._make_iter(epoch)
            else:
                if self._val_iter is None:
                    self._val_iter = self._make_iter(0)
                else:
                    self._val_iter.reset()
                source = self._val_iter
            remaining = self.num_images
            for _ in range(len(self)):
                batch = source.next()
                data, label = batch.data[0], batch.label[0]
                if remaining < self.batch_size:
                    # mxnet 1.9.1 reports pad=0 for round_batch=False: cut by our own count.
                    data, label = data[:remaining], label[:remaining]
                remaining -= self.batch_size
                yield _finish(data, label, self._dtype, self._to_cpu)
        except mx.base.MXNetError as err:
            lines = [line for line in str(err).splitlines() if line.strip()]
            raise DataError("cannot read %s: %s" % (self._index.rec_path,
                                                     lines[-1] if lines else "decode error")
                            ) from None


class _WorkerDataset:
    """Gluon dataset over ``items`` decoded in loader workers: ``(transformed image, float32
    label)``; each forked worker reseeds its augmentation on its first item."""

    def __init__(self, items, transform, seed):
        self._items = items
        self._transform = transform
        self._seed = seed
        self._pid = None

    def __len__(self):
        return len(self._items)

    def _first_item_in_process(self):
        """True on this process's first item (after reseeding it if it is a forked worker)."""
        if self._pid == os.getpid():
            return False
        if self._pid is not None:
            reseed_worker(self._seed)
        self._pid = os.getpid()
        return True

    def __getitem__(self, i):
        image, label = self._decode(i)
        return self._transform(image), np.float32(label)


class _ImageList(_WorkerDataset):
    """Gluon dataset over ``(path, label)`` items."""

    def _decode(self, i):
        self._first_item_in_process()
        path, label = self._items[i]
        try:
            return mx.image.imread(path, flag=1), label
        except mx.base.MXNetError:
            raise DataError("cannot decode image %s" % path) from None


class _ShardBatchSampler:
    """Batches of dataset indices for one shard; a new global permutation every epoch."""

    def __init__(self, indices, batch_size, train, num_parts, part_index, seed):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.train = train
        self.num_parts = num_parts
        self.part_index = part_index
        self.seed = seed
        self.epoch = 0
        if train:
            # Equal shards, so every Horovod worker runs the same number of steps.
            self.shard_size = len(self.indices) // num_parts
            self.num_batches = self.shard_size // batch_size
        else:
            self.shard_size = len(self.indices[part_index::num_parts])
            self.num_batches = math.ceil(self.shard_size / batch_size)

    def shard(self, epoch):
        """Dataset indices this shard visits in ``epoch``, in order (drop-last not applied)."""
        if not self.train:
            return self.indices[self.part_index::self.num_parts]
        order = np.random.RandomState(epoch_seed(self.seed, epoch, 2)).permutation(self.indices)
        return order[self.part_index::self.num_parts][:self.shard_size]

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        shard = self.shard(self.epoch)
        for b in range(self.num_batches):
            yield shard[b * self.batch_size:(b + 1) * self.batch_size].tolist()


class FolderLoader(EpochLoader):
    """Gluon ``DataLoader`` over a list of image files (decoding in worker processes).

    Parameters
    ----------
    items : list of (str, int)
        Image paths and class indices (``ImageFolderDataset.items``).
    indices : array-like of int
        The items in use (all, or the ``reduced_dataset_scale`` subset).
    transform : callable
        HWC uint8 NDArray -> CHW float32 NDArray.
    batch_size, train, num_parts, part_index, seed, dtype
        As for :class:`RecordLoader`; shards are strided slices of a per-epoch global
        permutation (training) or of the item list (validation).
    num_workers : int
        Decoding processes (0: in the calling thread).
    name : str
        The folder, for messages.
    """

    def __init__(self, items, indices, transform, batch_size, train, num_parts=1, part_index=0,
                 num_workers=4, seed=0, dtype="float32", name="image folder"):
        _shard_init(self, indices, batch_size, train, num_parts, part_index, seed, dtype, name)
        dataset = self._dataset(items, transform, seed)
        self._loader = gluon.data.DataLoader(dataset, batch_sampler=self._sampler,
                                             num_workers=int(num_workers), thread_pool=False)

    @staticmethod
    def _dataset(items, transform, seed):
        return _ImageList(items, transform, seed)

    def shard_indices(self, epoch):
        """Item indices this loader yields in ``epoch`` (for tests and bookkeeping)."""
        shard = self._sampler.shard(epoch)
        return shard[:self.num_images]

    def _run(self, epoch):
        self._sampler.epoch = epoch
        for data, label in self._loader:
            yield _finish(data, label, self._dtype, self._to_cpu)


class _RecordList(_WorkerDataset):
    """Gluon dataset over the records of an indexed ``.rec`` file (a :class:`RecordIndex` as
    ``items``), read by byte offset.

    Each process opens the file once (forked loader workers reopen it: a shared file position
    would interleave their reads).
    """

    _handle = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_pid=None, _handle=None)
        return state

    def _decode(self, i):
        index = self._items
        if self._first_item_in_process():
            self._handle = open(index.rec_path, "rb")
        payload, _ = _read_record(self._handle, int(index.offsets[i]), index.rec_path,
                                  index.idx_path)
        header, encoded = mx.recordio.unpack(payload)
        label = header.label
        if not np.isscalar(label):
            label = label[0]
        try:
            return mx.image.imdecode(encoded, flag=1), label
        except mx.base.MXNetError:
            raise DataError("%s: record %d holds no decodable image"
                            % (index.rec_path, int(index.keys[i]))) from None


class RecordSubsetLoader(FolderLoader):
    """Any subset of the records of an indexed ``.rec`` file, decoded by gluon workers.

    ``ImageRecordIter`` reads whole files or contiguous parts only, so a held-out split
    (:mod:`.splits`) reads its records, and the training records around it, through this
    loader: the same sharding, shuffling and augmentation as :class:`FolderLoader` (the gluon
    transforms of :func:`.transforms.folder_transform`, equivalent to ImageRecordIter's).

    Parameters
    ----------
    index : RecordIndex
    positions : array-like of int
        Record positions (in ``.idx`` order) in use.
    transform, batch_size, train, num_parts, part_index, num_workers, seed, dtype
        As for :class:`FolderLoader`.
    """

    def __init__(self, index, positions, transform, batch_size, train, num_parts=1,
                 part_index=0, num_workers=4, seed=0, dtype="float32"):
        self.index = index
        super().__init__(index, positions, transform, batch_size, train, num_parts=num_parts,
                         part_index=part_index, num_workers=num_workers, seed=seed, dtype=dtype,
                         name=index.rec_path)

    @staticmethod
    def _dataset(items, transform, seed):
        return _RecordList(items, transform, seed)


def decode_records(index):
    """Decode every record of a small indexed ``.rec`` file: ``(images, labels)``.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (N, H, W, 3), RGB
    labels : numpy.ndarray of float32
    """
    import cv2  # heavy: opencv, loaded only for image work
    images, labels = [], []
    with open(index.rec_path, "rb") as handle:
        for key, offset in zip(index.keys, index.offsets):
            payload, _ = _read_record(handle, int(offset), index.rec_path, index.idx_path)
            header, encoded = mx.recordio.unpack(payload)
            image = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError("%s: record %d holds no decodable image"
                                % (index.rec_path, int(key)))
            images.append(image[:, :, ::-1])
            label = header.label
            labels.append(label if np.isscalar(label) else label[0])
    return np.stack(images), np.asarray(labels, dtype=np.float32)


class MemoryLoader(EpochLoader):
    """Decoded images held in memory, batches assembled in numpy (small data sets).

    Used for the digits when a held-out split keeps ImageRecordIter out: decoding 32-px PNGs
    and running per-image gluon transforms costs about as much as a supernet step here, while
    slicing an array costs nothing. Sharding and per-epoch shuffling are those of
    :class:`FolderLoader`; the training augmentation is the digits shift of
    :mod:`.transforms` (zero padding by ``shift`` pixels, random crop back to size).

    Parameters
    ----------
    images : numpy.ndarray of uint8, (N, H, W, 3)
    labels : numpy.ndarray, (N,)
    positions : array-like of int
        The images in use.
    batch_size : int
    train : bool
    shift : int
        Largest random shift in pixels (training only; 0: none).
    mean, std : sequence of 3 floats
        Normalisation on the 0..255 scale.
    num_parts, part_index, seed, dtype
        As for :class:`FolderLoader`.
    """

    def __init__(self, images, labels, positions, batch_size, train, shift, mean, std,
                 num_parts=1, part_index=0, seed=0, dtype="float32", name="images"):
        _shard_init(self, positions, batch_size, train, num_parts, part_index, seed, dtype, name)
        self._images = images
        self._labels = np.asarray(labels, dtype=np.float32)
        self._train = bool(train)
        self._shift = int(shift) if train else 0
        self._mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
        self._seed = int(seed)
        self._part_index = int(part_index)

    def shard_indices(self, epoch):
        """Image indices this loader yields in ``epoch``."""
        return self._sampler.shard(epoch)[:self.num_images]

    def _run(self, epoch):
        self._sampler.epoch = epoch
        rng = np.random.RandomState(epoch_seed(self._seed, epoch, 6 + self._part_index))
        for batch in self._sampler:
            x = self._images[batch]
            if self._shift:
                s = self._shift
                padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
                height, width = x.shape[1:3]
                offsets = rng.randint(0, 2 * s + 1, size=(len(batch), 2))
                x = np.stack([padded[i, dy:dy + height, dx:dx + width]
                              for i, (dy, dx) in enumerate(offsets)])
            x = (x.transpose(0, 3, 1, 2).astype(np.float32) - self._mean) / self._std
            yield _finish(mx.nd.array(x, dtype=self._dtype), mx.nd.array(self._labels[batch]),
                          self._dtype, False)


class SyntheticLoader(EpochLoader):
    """Fixed random tensors held in memory, sliced into batches (no per-batch copies).

    Parameters
    ----------
    num_images, num_classes, input_size, batch_size : int
    train : bool
        Shuffle the batch order per epoch and drop the last partial batch.
    seed : int
    dtype : str
    """

    def __init__(self, num_images, num_classes, input_size, batch_size, train, seed=0,
                 dtype="float32"):
        rng = np.random.RandomState(epoch_seed(seed, 0, 3 if train else 4))
        num_batches = num_images // batch_size if train else math.ceil(num_images / batch_size)
        if num_batches == 0:
            raise ValueError("synthetic data: %d images, fewer than the batch size %d"
                             % (num_images, batch_size))
        super().__init__(batch_size, num_batches,
                         num_batches * batch_size if train else num_images, dtype)
        data = rng.standard_normal((self.num_images, 3, input_size, input_size))
        labels = rng.randint(0, num_classes, size=self.num_images)
        self._data = mx.nd.array(data, dtype=self._dtype)
        self._label = mx.nd.array(labels, dtype="float32")
        self._train = train
        self._seed = seed

    def _run(self, epoch):
        order = np.arange(len(self))
        if self._train:
            order = np.random.RandomState(epoch_seed(self._seed, epoch, 5)).permutation(order)
        for b in order:
            start = int(b) * self.batch_size
            stop = min(start + self.batch_size, self.num_images)
            yield self._data[start:stop], self._label[start:stop]
