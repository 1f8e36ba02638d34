"""Loading a saved ``.params`` file into a model, with one line naming what does not fit."""
import os

import mxnet as mx

__all__ = ["load_params_checked"]


def load_params_checked(net, path, flag, ctx=None, hint="", cast_dtype=True, what="the model",
                        rebuild_constants=False):
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
    what : str
        What the file should fit, in messages (``'the model'``, ``'the subnet'``).
    rebuild_constants : bool
        Constant parameters the file does not hold (the permutation weights of the 1x1-conv
        shuffle, which a net trained with the reshape shuffle never saved) are initialised
        from their initialiser instead of refused.

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
    expected = net._collect_params_with_prefix()
    constants = {name for name, param in expected.items() if rebuild_constants
                 and name not in saved and isinstance(param, mx.gluon.Constant)}
    mismatch = _first_mismatch(expected, saved, constants)
    if mismatch:
        raise ValueError("%s %s does not fit %s: %s%s"
                         % (flag, path, what, mismatch, " (%s)" % hint if hint else ""))
    net.load_parameters(path, ctx=ctx, allow_missing=bool(constants), cast_dtype=cast_dtype)
    for name in constants:
        expected[name].initialize(ctx=ctx)
    return net


def _first_mismatch(expected, saved, skip):
    """The first parameter of ``expected`` (name -> Parameter) that ``saved`` (name ->
    NDArray) lacks or holds in another shape, else the first one it holds in excess; None when
    they fit."""
    for name, param in expected.items():
        if name in skip:
            continue
        if name not in saved:
            return "parameter %s is missing" % name
        have, want = tuple(saved[name].shape), param.shape
        if want is not None and (len(have) != len(want)
                                 or any(w > 0 and w != h for h, w in zip(have, want))):
            return "parameter %s has shape %s, expected %s" % (name, have, want)
    for name in saved:
        if name not in expected:
            return "unexpected parameter %s" % name
    return None
