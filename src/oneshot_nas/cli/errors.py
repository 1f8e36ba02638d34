"""What the command lines report as a user error: one line, exit status 2.

Bad flags, missing or corrupt files, a full disk, a data set MXNet cannot decode, a diverging
run: each is something a user can cause and fix, so the CLIs catch these types at the edge and
print the first meaningful line of the message instead of a traceback.
"""
import sys

import mxnet as mx

from ..errors import error_line

__all__ = ["user_errors", "error_line", "report"]


def user_errors():
    """Exception types a CLI turns into one line and exit status 2."""
    return (ValueError, OSError, FloatingPointError, mx.base.MXNetError)


def report(prog, err):
    """Print ``prog: error: <line>`` to stderr; returns the exit status 2."""
    print("%s: error: %s" % (prog, error_line(err)), file=sys.stderr)
    return 2
