"""The one line of an error worth showing a user (MXNet prefixes its messages with a stack)."""

__all__ = ["error_line"]


def error_line(err, limit=500):
    """The most informative line of ``err``'s message, at most ``limit`` characters.

    An ``OSError`` naming a file gives ``'<file>: <reason>'``; a message of several lines
    (MXNet's: a traceback, then ``Check failed: ...``) gives its last line that mentions a
    failed check or an error, else its first line; an empty message gives the exception's
    type name.
    """
    if isinstance(err, OSError) and err.filename and err.strerror:
        return ("%s: %s" % (err.filename, err.strerror))[:limit]
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1:
        checks = [line for line in lines if "Check failed" in line or "Error" in line]
        lines = checks[-1:] or lines[:1]
    return (lines[0] if lines else type(err).__name__)[:limit]
