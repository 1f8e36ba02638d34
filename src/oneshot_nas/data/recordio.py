"""RecordIO files: checking ``.rec``/``.idx`` pairs, reading labels, writing ``.lst`` lines.

The format (dmlc-core): every record starts with the magic number ``0xced7230a`` and a 32-bit
word holding a 3-bit continuation flag and a 29-bit length; the payload is padded to 4 bytes.
An image record's payload starts with MXNet's ``IRHeader`` (flag, label, id, id2).
"""
import logging
import os
import struct

import numpy as np

from .errors import DataError

__all__ = ["RecordIndex", "read_index", "read_labels", "format_lst_line", "read_lst"]

logger = logging.getLogger(__name__)

_MAGIC = 0xCED7230A
_IR_FORMAT = "IfQQ"  # mxnet.recordio._IR_FORMAT: flag, label, id, id2
_IR_SIZE = struct.calcsize(_IR_FORMAT)
# Offsets checked for the magic number besides the first and the last one.
_NUM_SPOT_CHECKS = 64


class RecordIndex:
    """A validated ``.idx`` file: record keys and byte offsets into the ``.rec`` file.

    Attributes
    ----------
    rec_path, idx_path : str
    keys : numpy.ndarray of int64
        Record keys in file order (the order of the ``.idx`` lines).
    offsets : numpy.ndarray of int64
        Byte offset of each record in the ``.rec`` file, aligned with ``keys``.
    """

    def __init__(self, rec_path, idx_path, keys, offsets):
        self.rec_path = rec_path
        self.idx_path = idx_path
        self.keys = keys
        self.offsets = offsets

    def __len__(self):
        return len(self.keys)

    def __repr__(self):
        return "RecordIndex(%r, %d records)" % (self.rec_path, len(self))


def _read_record_header(handle, offset, rec_path):
    """Return ``(payload_length, cflag)`` of the record part at ``offset``; raise if broken."""
    handle.seek(offset)
    head = handle.read(8)
    if len(head) != 8:
        raise DataError("corrupt RecordIO file %s: record at byte %d lies past the end of the "
                        "file (truncated .rec or wrong .idx)" % (rec_path, offset))
    magic, lrec = struct.unpack("<II", head)
    if magic != _MAGIC:
        raise DataError("corrupt RecordIO file %s or its index: no record starts at byte %d"
                        % (rec_path, offset))
    return lrec & ((1 << 29) - 1), lrec >> 29


def _record_end(handle, offset, rec_path):
    """Byte position just after the (possibly multi-part) record starting at ``offset``."""
    position = offset
    while True:
        length, cflag = _read_record_header(handle, position, rec_path)
        position += 8 + ((length + 3) & ~3)
        # cflag 0: whole record; 1: first part; 2: middle part; 3: last part.
        if cflag in (0, 3):
            return position


def read_index(rec_path, idx_path=None, what="RecordIO file"):
    """Read and check a ``.rec`` / ``.idx`` pair.

    Checks that both files exist, that every ``.idx`` line is ``key<TAB>offset`` with
    unique offsets inside the ``.rec`` file, that records start at the first,
    the last and a sample of other offsets, and that the last record ends exactly at the end
    of the ``.rec`` file (which catches a truncated ``.rec`` and a truncated ``.idx``).

    Parameters
    ----------
    rec_path : str
        The ``.rec`` file.
    idx_path : str, optional
        Its index; default: ``rec_path`` with the extension ``.idx``.
    what : str
        How to call the file in error messages (e.g. ``"--rec-train"``).

    Returns
    -------
    RecordIndex

    Raises
    ------
    DataError
        One line naming the missing or corrupt file.
    """
    if not rec_path:
        raise DataError("%s: no .rec file given" % what)
    rec_path = os.path.expanduser(str(rec_path))
    if idx_path is None:
        idx_path = os.path.splitext(rec_path)[0] + ".idx"
    idx_path = os.path.expanduser(str(idx_path))
    if not os.path.isfile(rec_path):
        raise DataError("%s not found: %s" % (what, rec_path))
    if not os.path.isfile(idx_path):
        raise DataError("index of %s not found: %s (make it with im2rec or "
                        "mx.recordio.MXIndexedRecordIO)" % (rec_path, idx_path))
    with open(idx_path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DataError("corrupt index file %s: not a text file" % idx_path) from None
    lines = text.splitlines()
    if not lines or not text.endswith("\n"):
        # im2rec and MXIndexedRecordIO end every line with a newline: a missing one means
        # the file was cut off.
        raise DataError("corrupt index file %s: %s" % (
            idx_path, "empty" if not lines else "truncated (last line has no newline)"))
    try:
        table = np.array([line.split("\t") for line in lines], dtype=np.int64)
    except ValueError:
        raise DataError("corrupt index file %s: every line must be 'key<TAB>offset'"
                        % idx_path) from None
    if table.ndim != 2 or table.shape[1] != 2:
        raise DataError("corrupt index file %s: every line must be 'key<TAB>offset'" % idx_path)
    keys, offsets = table[:, 0], table[:, 1]
    rec_size = os.path.getsize(rec_path)
    if offsets.min() < 0 or offsets.max() >= rec_size:
        raise DataError("index %s does not match %s: offset %d outside the %d-byte file"
                        % (idx_path, rec_path, offsets.max() if offsets.max() >= rec_size
                           else offsets.min(), rec_size))
    if len(np.unique(offsets)) != len(offsets):
        raise DataError("corrupt index file %s: repeated offsets" % idx_path)
    order = np.argsort(offsets, kind="stable")
    rng = np.random.RandomState(0)
    spots = rng.choice(len(order), size=min(_NUM_SPOT_CHECKS, len(order)), replace=False)
    with open(rec_path, "rb") as handle:
        for position in sorted(set(spots.tolist()) | {0, len(order) - 1}):
            _read_record_header(handle, int(offsets[order[position]]), rec_path)
        if offsets[order[0]] != 0:
            raise DataError("index %s does not match %s: the first record at byte 0 is not "
                            "listed" % (idx_path, rec_path))
        end = _record_end(handle, int(offsets[order[-1]]), rec_path)
    if end > rec_size:
        raise DataError("corrupt RecordIO file %s: the last record is cut off (%d of %d "
                        "bytes)" % (rec_path, rec_size, end))
    if end < rec_size:
        raise DataError("index %s does not match %s: records after byte %d are not listed "
                        "(truncated .idx?)" % (idx_path, rec_path, end))
    return RecordIndex(rec_path, idx_path, keys, offsets)


def read_labels(index):
    """Read the class label of every record of a :class:`RecordIndex`, without decoding images.

    Parameters
    ----------
    index : RecordIndex

    Returns
    -------
    numpy.ndarray of float32
        The first label of each record, in the order of ``index.keys``.
    """
    labels = np.empty(len(index), dtype=np.float32)
    with open(index.rec_path, "rb") as handle:
        for i, offset in enumerate(index.offsets):
            length, _ = _read_record_header(handle, int(offset), index.rec_path)
            if length < _IR_SIZE:
                raise DataError("corrupt RecordIO file %s: record at byte %d is too short for "
                                "an image header" % (index.rec_path, offset))
            flag, label, _, _ = struct.unpack(_IR_FORMAT, handle.read(_IR_SIZE))
            if flag > 0:  # label array of `flag` float32 values follows the header
                label = struct.unpack("f", handle.read(4))[0]
            labels[i] = label
    return labels


def format_lst_line(key, label, path):
    """One line of an ``.lst`` file as ``im2rec`` writes it: ``key<TAB>label<TAB>path``."""
    return "%d\t%f\t%s\n" % (key, label, path)


def read_lst(path):
    """Parse an ``.lst`` file into ``(keys, labels, paths)``.

    Parameters
    ----------
    path : str

    Returns
    -------
    keys : numpy.ndarray of int64
    labels : numpy.ndarray of float32
        The first label column.
    paths : list of str
    """
    keys, labels, paths = [], [], []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            try:
                if len(fields) < 3:
                    raise ValueError
                keys.append(int(fields[0]))
                labels.append(float(fields[1]))
            except ValueError:
                raise DataError("corrupt list file %s: line %d is not 'key<TAB>label<TAB>path'"
                                % (path, number)) from None
            paths.append(fields[-1])
    return np.array(keys, dtype=np.int64), np.array(labels, dtype=np.float32), paths
