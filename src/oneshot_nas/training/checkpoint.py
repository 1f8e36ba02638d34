"""Atomic checkpoints: params + trainer states + a small JSON, each written then renamed.

The JSON is written last and names the other two files, so a checkpoint exists only when all
three are complete: a run killed at any moment leaves complete checkpoints only.

The ``best`` checkpoint is replaced as a whole: its parameters and states go to new files with
a name of their own (``{prefix}-best-{epoch}-{random}.params``), and only then does the JSON
``{prefix}-best.json`` switch to them in one rename. A run killed before that rename keeps the
previous best set; files of a set no JSON names any more are deleted afterwards.

Parameters are saved from the first device's copy (with several devices each keeps its own BN
running statistics; MXNet's ``save_parameters`` would average them), the copy ``get_subnet``
extracts from.

Trainer states files (``.states``) are MXNet optimizer states, that is Python pickles: loading
one can run arbitrary code, so load only states files from a trusted source.
"""
import ast
import json
import logging
import os
import random
import re
import secrets
import tempfile

import mxnet as mx
import numpy as np

from ..errors import error_line
from ..files import TMP_PREFIX, atomic_write, strict_json
from ..nn import sync_bn_statistics

__all__ = ["CheckpointError", "save_checkpoint", "load_meta", "latest_checkpoint",
           "restore_rng", "capture_rng", "check_writable_dir", "load_trainer_states",
           "save_parameters", "save_first_context", "remove_partial_files",
           "remove_replaced_best"]

logger = logging.getLogger(__name__)

_META = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4})\.json$")
_BEST_FILE = re.compile(r"^(?P<prefix>.+)-best-\d{4}-[0-9a-f]{8}\.(params|states)$")


def capture_rng():
    """Python and numpy global RNG states (JSON-serialisable)."""
    state = np.random.get_state()
    return {"python": repr(random.getstate()),
            "numpy": [state[0], state[1].tolist(), state[2], state[3], state[4]]}


def restore_rng(saved):
    if not saved:
        return
    random.setstate(ast.literal_eval(saved["python"]))
    kind, keys, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def save_checkpoint(save_dir, prefix, tag, net, trainer, meta):
    """Write ``{prefix}-{tag}.params/.states/.json`` atomically; returns the JSON path.

    ``tag`` is a zero-padded epoch (``'0007'``) or ``'best'``. An epoch checkpoint's files
    are named after the epoch; the best one's after its epoch and a random suffix, so that a
    new best set never overwrites a file the current ``{prefix}-best.json`` names.
    """
    json_path = os.path.join(save_dir, "%s-%s.json" % (prefix, tag))
    if tag == "best":
        stem = "%s-best-%04d-%s" % (prefix, int(meta.get("epoch", 0)), secrets.token_hex(4))
    else:
        stem = "%s-%s" % (prefix, tag)
    base = os.path.join(save_dir, stem)
    meta = dict(meta, params=os.path.basename(base + ".params"),
                states=os.path.basename(base + ".states"), rng=capture_rng())

    def write_json(tmp):
        with open(tmp, "w") as f:
            json.dump(strict_json(meta), f, indent=1, allow_nan=False)
    for path, writer in ((base + ".params", lambda tmp: save_first_context(net, tmp)),
                         (base + ".states", trainer.save_states), (json_path, write_json)):
        try:
            atomic_write(path, writer)
        except OSError as err:
            # the earlier checkpoints are untouched: each file is renamed into place whole
            raise CheckpointError("cannot write checkpoint file %s: %s" % (path, _reason(err))) \
                from None
    if tag == "best":
        remove_replaced_best(save_dir, prefix)
    logger.info("saved checkpoint %s (epoch %d)", os.path.splitext(json_path)[0],
                meta.get("epoch", -1))
    return json_path


def remove_replaced_best(save_dir, prefix):
    """Delete best-checkpoint files that ``{prefix}-best.json`` no longer names (left by a
    replaced best set, or by a run killed before its JSON switched to them); returns their
    names. Nothing is deleted while the JSON cannot be read."""
    if not os.path.isdir(save_dir):
        return []
    try:
        with open(os.path.join(save_dir, "%s-best.json" % prefix)) as f:
            current = json.load(f)
        keep = {current.get("params"), current.get("states")}
    except FileNotFoundError:
        keep = set()
    except (OSError, ValueError):
        return []
    stale = sorted(n for n in os.listdir(save_dir)
                   if n not in keep and _BEST_FILE.match(n)
                   and _BEST_FILE.match(n).group("prefix") == prefix)
    for name in stale:
        os.remove(os.path.join(save_dir, name))
    return stale


def load_meta(json_path):
    """Read a checkpoint JSON; raises ValueError naming the file if it is unusable."""
    try:
        with open(json_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError("checkpoint %s cannot be read: %s" % (json_path, err)) from None
    directory = os.path.dirname(os.path.abspath(json_path))
    for key in ("params", "states"):
        path = os.path.join(directory, meta.get(key, ""))
        if not meta.get(key) or not os.path.isfile(path):
            raise ValueError("checkpoint %s refers to a missing %s file %s"
                             % (json_path, key, path))
        meta[key + "_path"] = path
    return meta


def latest_checkpoint(save_dir, prefix):
    """The complete epoch checkpoint with the highest epoch in ``save_dir``, or None."""
    if not os.path.isdir(save_dir):
        return None
    found = []
    for name in os.listdir(save_dir):
        m = _META.match(name)
        if m and m.group("prefix") == prefix:
            found.append((int(m.group("epoch")), os.path.join(save_dir, name)))
    for _, path in sorted(found, reverse=True):
        try:
            return load_meta(path)
        except ValueError as err:
            logger.warning("skipping incomplete checkpoint: %s", err)
    return None


class CheckpointError(ValueError):
    """A checkpoint or parameter file cannot be written or read (disk full, read-only
    folder, truncated or foreign file). The message is one line and names the file."""


def _reason(err):
    """The meaningful last line of an MXNet error (its first line is 'Traceback ...')."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return error_line(err, 300)


def check_writable_dir(path, what="--save-dir"):
    """Create ``path`` if needed and write a probe file into it; CheckpointError if either
    fails (a file in the way, a read-only or full disk), before any work is done."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise CheckpointError("%s %s is not a writable folder: %s" % (what, path, _reason(err))) \
            from None


def save_first_context(net, path):
    """``net.save_parameters(path)``, but every parameter from its first context: on several
    devices those are the BN statistics that are kept (not the average over the devices)."""
    sync_bn_statistics(net)          # pending sliced statistics of a supernet
    arrays = {name: param.list_data()[0].copyto(mx.cpu())
              for name, param in net._collect_params_with_prefix().items()}
    mx.nd.save(path, arrays)


def save_parameters(net, path):
    """:func:`save_first_context` atomically; CheckpointError naming ``path`` on failure."""
    try:
        atomic_write(path, lambda tmp: save_first_context(net, tmp))
    except OSError as err:
        raise CheckpointError("cannot write %s: %s" % (path, _reason(err))) from None


def load_trainer_states(trainer, path):
    """``trainer.load_states(path)``; CheckpointError naming the file if it is unusable.

    The file is a Python pickle (MXNet's optimizer states): only load one from a trusted
    source, since unpickling can run arbitrary code."""
    try:
        trainer.load_states(path)
    except Exception as err:       # a damaged pickle fails with any of several error types
        raise CheckpointError("trainer states %s are truncated or do not fit this optimizer: "
                              "%s" % (path, _reason(err))) from None


def remove_partial_files(directory):
    """Delete the temporary files that :func:`atomic_write` leaves behind when its process is
    killed mid-write (``.tmp-*``); returns their names."""
    if not os.path.isdir(directory):
        return []
    partial = sorted(n for n in os.listdir(directory) if n.startswith(TMP_PREFIX))
    for name in partial:
        os.remove(os.path.join(directory, name))
    if partial:
        logger.info("removed %d partly written file(s) of an interrupted run in %s: %s",
                    len(partial), directory, ", ".join(partial))
    return partial
