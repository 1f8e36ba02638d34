"""A watchdog for distributed runs: a worker that makes no progress for a while prints the
Python stack of every thread and exits, so that a hang becomes a failure with a diagnosis.

Built on :func:`faulthandler.dump_traceback_later`, whose timer runs in a C thread: it fires
even when the worker is stuck inside a native call that holds the interpreter lock. The timer
is process-wide, as is this module's state: :func:`watching` arms it for the duration of a
run, :func:`kick` (called at every batch, training, recalibration or validation) starts the
period again, and nothing happens while no run is watched. When one Horovod worker exits this
way, ``horovodrun`` terminates the others with SIGTERM; :func:`stacks_on_terminate` makes them
print their stacks too before they go.
"""
import contextlib
import faulthandler
import logging
import signal
import sys

__all__ = ["watching", "kick", "stacks_on_terminate"]

logger = logging.getLogger(__name__)

_seconds = 0        # the armed period, 0 when no run is watched


def kick():
    """Progress: the armed period starts again (nothing when no run is watched)."""
    if _seconds:
        faulthandler.dump_traceback_later(_seconds, exit=True, file=sys.stderr)


@contextlib.contextmanager
def watching(seconds, what="this worker"):
    """Watch the block: no :func:`kick` for ``seconds`` ends the process (exit status 1) after
    the stacks of all its threads went to stderr. ``seconds`` 0 watches nothing."""
    global _seconds
    if not seconds:
        yield
        return
    if seconds < 0:
        raise ValueError("--watchdog-seconds must be >= 0, got %s" % seconds)
    logger.info("watchdog: %s exits with its threads' stacks if it makes no progress for %d s "
                "(--watchdog-seconds)", what, seconds)
    _seconds = int(seconds)
    kick()
    try:
        yield
    finally:
        _seconds = 0
        faulthandler.cancel_dump_traceback_later()


def stacks_on_terminate():
    """SIGTERM prints the stacks of every thread before the process ends as it would have."""
    faulthandler.register(signal.SIGTERM, file=sys.stderr, all_threads=True, chain=True)
