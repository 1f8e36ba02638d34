"""What the command lines report as a user error: one line, exit status 2.

Bad flags, missing or corrupt files, a full disk, a data set MXNet cannot decode, a diverging
run: each is something a user can cause and fix, so the CLIs catch these types at the edge and
print the first meaningful line of the message instead of a traceback.
"""
import sys

__all__ = ["user_errors", "error_line", "report"]


def user_errors():
    """Exception types a CLI turns into one line and exit status 2."""
    import mxnet as mx
    return (ValueError, OSError, FloatingPointError, mx.base.MXNetError)


def error_line(err):
    """The most informative line of ``err``'s message (MXNet prefixes its own with a stack)."""
    text = str(err).strip()
    if isinstance(err, OSError) and err.filename and err.strerror:
        return "%s: %s" % (err.filename, err.strerror)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        checks = [line for line in lines if "Check failed" in line or "Error" in line]
        lines = checks[-1:] or lines[:1]
    return (lines[0] if lines else type(err).__name__)[:500]


def report(prog, err):
    """Print ``prog: error: <line>`` to stderr; returns the exit status 2."""
    print("%s: error: %s" % (prog, error_line(err)), file=sys.stderr)
    return 2
