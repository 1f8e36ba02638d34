"""Ctrl-C that stops a long loop at a safe point.

MXNet calls back into Python while it builds graphs (the custom depthwise operator's shape and
creation callbacks). A KeyboardInterrupt raised inside such a callback cannot travel through
MXNet's C++ code and was seen to crash the process (segmentation fault). Inside
:func:`deferred` (a training run, a search), the first Ctrl-C therefore only asks to stop:
the loop raises KeyboardInterrupt at its next :func:`check` (after the current batch or
candidate); a second Ctrl-C raises at once. Outside, Ctrl-C behaves as usual.
"""
import contextlib
import logging
import os
import signal
import threading

__all__ = ["deferred", "check", "requested"]

logger = logging.getLogger(__name__)

_state = {"depth": 0, "pending": False}


_NOTICE = b"interrupted: stopping after the current step (Ctrl-C again to stop at once)\n"


def _handler(signum, frame):
    # No logging here: the signal can arrive while this thread is inside a logging call or a
    # write to the same stream (every batch logs a line), and re-entering those from the
    # handler can fail or block; os.write to the stderr descriptor takes no Python lock.
    if _state["depth"] and not _state["pending"]:
        _state["pending"] = True
        try:
            os.write(2, _NOTICE)
        except OSError:
            pass
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Inside this block, the first Ctrl-C is held until the next :func:`check`. Only in the
    main thread, and only when Ctrl-C has Python's default meaning there."""
    usable = threading.current_thread() is threading.main_thread() and (
        _state["depth"] or signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if not usable:
        yield
        return
    if not _state["depth"]:
        signal.signal(signal.SIGINT, _handler)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if not _state["depth"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _state["pending"] = False


def requested():
    """Whether a Ctrl-C is waiting for the next :func:`check`."""
    return _state["pending"]


def check():
    """Raise the held Ctrl-C, if any, as KeyboardInterrupt (call at safe points)."""
    if _state["pending"]:
        _state["pending"] = False
        logger.warning("interrupted: stopped after the current step")
        raise KeyboardInterrupt
