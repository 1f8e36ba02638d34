"""Crash-safe file writing shared by training, search, profiling and the latency table.

A file written through :func:`atomic_write` either keeps its old content or has the complete
new one: the data goes to a temporary file in the same directory, is flushed to disk, and is
renamed over the target. A run killed at any moment never leaves a half-written file behind.
"""
import json
import os
import tempfile

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json"]


def atomic_write(path, writer):
    """Call ``writer(tmp_path)`` and rename the result to ``path`` (same directory).

    Parameters
    ----------
    path : str
        Target file; its directory is created if needed.
    writer : callable
        Writes the complete content to the temporary path it is given (for example
        ``net.save_parameters``).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_write_json(path, obj, **dump_kwargs):
    """Write ``obj`` as JSON to ``path`` atomically (``dump_kwargs`` go to ``json.dumps``)."""
    atomic_write_text(path, json.dumps(obj, **dump_kwargs))
