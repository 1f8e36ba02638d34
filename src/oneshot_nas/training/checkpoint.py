"""Atomic checkpoints: params + trainer states + a small JSON, each written then renamed.

The JSON is written last and names the other two files, so a checkpoint exists only when all
three are complete: a run killed at any moment leaves complete checkpoints only.
"""
import json
import logging
import os
import random
import re

import numpy as np

from ..files import atomic_write, atomic_write_json

__all__ = ["save_checkpoint", "load_meta", "latest_checkpoint",
           "restore_rng", "capture_rng"]

logger = logging.getLogger(__name__)

_META = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4})\.json$")


def capture_rng():
    """Python and numpy global RNG states (JSON-serialisable)."""
    state = np.random.get_state()
    return {"python": repr(random.getstate()),
            "numpy": [state[0], state[1].tolist(), state[2], state[3], state[4]]}


def restore_rng(saved):
    if not saved:
        return
    import ast
    random.setstate(ast.literal_eval(saved["python"]))
    kind, keys, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def save_checkpoint(save_dir, prefix, tag, net, trainer, meta):
    """Write ``{prefix}-{tag}.params/.states/.json`` atomically; returns the JSON path.

    ``tag`` is a zero-padded epoch (``'0007'``) or ``'best'``.
    """
    base = os.path.join(save_dir, "%s-%s" % (prefix, tag))
    atomic_write(base + ".params", net.save_parameters)
    atomic_write(base + ".states", trainer.save_states)
    meta = dict(meta, params=os.path.basename(base + ".params"),
                states=os.path.basename(base + ".states"), rng=capture_rng())

    atomic_write_json(base + ".json", meta, indent=1)
    logger.info("saved checkpoint %s (epoch %d)", base, meta.get("epoch", -1))
    return base + ".json"


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
