"""The one exception type of the data layer."""

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file or folder is missing or corrupt.

    The message is one line and names the offending path, so command-line entry points can
    print it as it is (``str(err)``) and exit.
    """
