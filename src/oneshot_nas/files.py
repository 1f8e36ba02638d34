"""Crash-safe file writing shared by training, search, profiling and the latency table.

A file written through :func:`atomic_write` either keeps its old content or has the complete
new one: the data goes to a temporary file in the same directory, is flushed to disk, and is
renamed over the target. A run killed at any moment never leaves a half-written file behind.
The file gets the mode any newly created file gets (0666 less the umask), not the 0600 that
``tempfile.mkstemp`` would give it, so that teammates can read results on a shared disk.
"""
import hashlib
import json
import math
import numbers
import os
import secrets

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "strict_json",
           "nan_for_null", "read_json", "file_digest", "TMP_PREFIX"]

TMP_PREFIX = ".tmp-"        # temporary files of interrupted writes start with it


def _create_temporary(directory, name):
    """Create an empty, new file ``directory/.tmp-<random>-name``; the kernel applies the
    umask to its 0666 mode as for any file a program creates."""
    for _ in range(100):
        path = os.path.join(directory, "%s%s-%s" % (TMP_PREFIX, secrets.token_hex(4), name))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError("cannot create a temporary file for %s in %s" % (name, directory))


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
    tmp = _create_temporary(directory, os.path.basename(path))
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


def strict_json(obj):
    """``obj`` with every NaN or infinite float replaced by None, so that it can be written as
    standard JSON (``NaN`` is Python's extension, which jq, browsers and most other readers
    refuse). Real numbers nested in dicts, lists and tuples become Python floats (numpy
    scalars too); nothing else is touched."""
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
        obj = float(obj)                # also numpy's float32 / float64 scalars
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(value) for value in obj]
    return obj


def nan_for_null(value):
    """A figure read from a file :func:`atomic_write_json` wrote: ``null`` (a NaN when it was
    written) is NaN again; anything else is returned as it is."""
    return math.nan if value is None else value


def atomic_write_json(path, obj, **dump_kwargs):
    """Write ``obj`` as standard JSON to ``path`` atomically: a figure that is not a finite
    number (NaN: not computable) is written as ``null``. ``dump_kwargs`` go to
    ``json.dumps``."""
    atomic_write_text(path, json.dumps(strict_json(obj), allow_nan=False, **dump_kwargs))


def read_json(path, what):
    """The JSON document in ``path``; ValueError in one line naming ``what`` it should be when
    it cannot be opened or parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError("cannot read %s %s: %s" % (what, path, str(err).splitlines()[0])) \
            from None


def file_digest(path):
    """SHA-1 (hex) of a file's content: identifies weights whatever their file name."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
