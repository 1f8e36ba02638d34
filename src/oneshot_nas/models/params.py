"""Loading a saved ``.params`` file into a model, with one line naming what does not fit."""
import os

import mxnet as mx

__all__ = ["load_params_checked"]


def load_params_checked(net, path, flag, ctx=None, hint="", cast_dtype=True):
    """Load ``path`` (written by ``net.save_parameters``) into ``net``.

    Parameters
    ----------
    net : Block
    path : str
    flag : str
        The command-line flag that named the file (``--resume-params``), used in messages.
    ctx : Context or list of Context, optional
    hint : str
        What to check when the file does not fit (appended to the message).
    cast_dtype : bool
        Cast the saved values to the parameters' dtype (float16 training).

    Raises
    ------
    ValueError
        The file is missing, unreadable, or its first mismatched parameter (missing, unexpected
        or of another shape) is named.
    """
    if not path or not os.path.isfile(path):
        raise ValueError("%s file %s does not exist" % (flag, path))
    try:
        saved = mx.nd.load(path)
    except (OSError, mx.base.MXNetError):
        raise ValueError("%s file %s is not an MXNet params file (or is truncated)"
                         % (flag, path)) from None
    if not isinstance(saved, dict):
        raise ValueError("%s file %s holds unnamed arrays, not a model's parameters"
                         % (flag, path))
    hint = " (%s)" % hint if hint else ""
    expected = net._collect_params_with_prefix()
    for name, param in expected.items():
        if name not in saved:
            raise ValueError("%s %s does not fit the model: parameter %s is missing%s"
                             % (flag, path, name, hint))
        have, want = tuple(saved[name].shape), param.shape
        if want is not None and (len(have) != len(want)
                                 or any(w > 0 and w != h for h, w in zip(have, want))):
            raise ValueError("%s %s does not fit the model: parameter %s has shape %s, "
                             "expected %s%s" % (flag, path, name, have, want, hint))
    for name in saved:
        if name not in expected:
            raise ValueError("%s %s does not fit the model: unexpected parameter %s%s"
                             % (flag, path, name, hint))
    net.load_parameters(path, ctx=ctx, cast_dtype=cast_dtype)
    return net
