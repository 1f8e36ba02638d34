"""A watchdog for distributed runs: a worker that makes no progress for a while prints the
Python stack of every thread and, a little later, ends, so that a hang becomes a failure that
says where each worker was.

Two timers that need neither the interpreter lock nor a live Python thread, so that they fire
even when the worker is stuck inside a native call: :func:`faulthandler.dump_traceback_later`
prints the stacks after the period, and ``SIGALRM`` with its default action ends the process
``GRACE_SECONDS`` later. The grace lets every worker of a hung run, each stuck in its own way
(one before its first batch, the others in a collective waiting for it), print its stacks
before the first one ends and ``horovodrun`` stops the rest. The timers are process-wide, as
is this module's state: :func:`watching` arms them for the duration of a run, :func:`kick`
(called at every batch, training, recalibration or validation) starts the period again, and
nothing happens while no run is watched. :func:`stacks_on_terminate` makes a worker that
``horovodrun`` stops print its stacks too.
"""
import contextlib
import faulthandler
import logging
import signal
import sys

__all__ = ["watching", "kick", "stacks_on_terminate"]

logger = logging.getLogger(__name__)

GRACE_SECONDS = 15  # between the stacks and the end of the process
_seconds = 0        # the armed period, 0 when no run is watched


def kick():
    """Progress: the armed period starts again (nothing when no run is watched)."""
    if _seconds:
        faulthandler.dump_traceback_later(_seconds, file=sys.stderr)
        signal.alarm(_seconds + GRACE_SECONDS)


@contextlib.contextmanager
def watching(seconds, what="this worker"):
    """Watch the block: no :func:`kick` for ``seconds`` prints the stacks of all threads on
    stderr, and ``GRACE_SECONDS`` later SIGALRM ends the process. ``seconds`` 0 watches
    nothing."""
    global _seconds
    if not seconds:
        yield
        return
    if seconds < 0:
        raise ValueError("--watchdog-seconds must be >= 0, got %s" % seconds)
    logger.info("watchdog: %s prints its threads' stacks if it makes no progress for %d s "
                "(--watchdog-seconds) and ends %d s later", what, seconds, GRACE_SECONDS)
    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL)
    _seconds = int(seconds)
    kick()
    try:
        yield
    finally:
        _seconds = 0
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


def stacks_on_terminate():
    """SIGTERM prints the stacks of every thread before the process ends as it would have."""
    faulthandler.register(signal.SIGTERM, file=sys.stderr, all_threads=True, chain=True)
