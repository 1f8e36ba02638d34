"""What a trained supernet knows about itself: the training record beside its weights.

The trainer writes ``<weights>.json`` beside every ``<weights>.params`` with its whole
configuration. The commands that read a supernet (search, rank check, winner check) take the
model's shape and its data from that record, so the user types them once, when training:
a flag left out takes the record's value, a flag that contradicts the record is refused in one
line naming both values, and weights without a record load with one warning and the
commands' own defaults.
"""
import json
import logging
import os
import shlex
import sys

from .config import ModelConfig

__all__ = ["SUPERNET_FIELDS", "SUPERNET_DEFAULTS", "record_path", "read_training_json",
           "read_record", "apply_record", "set_command", "current_command"]

logger = logging.getLogger(__name__)

# what a supernet's record decides for the commands that read it (its shape and its data)
SUPERNET_FIELDS = ("dataset", "input_size", "channels_layout", "use_se",
                   "last_conv_after_pooling")

# weights without a record: ImageNet (its input size follows the data set) and ModelConfig's
# shape
SUPERNET_DEFAULTS = dict(ModelConfig().model_settings(), dataset="imagenet", input_size=None)


_COMMAND = []          # the running command's words, set by the command-line wrapper


def set_command(words):
    """Remember the command line being run (the CLI wrapper calls this with the command's
    name and the arguments its ``main`` was given)."""
    _COMMAND[:] = [str(w) for w in words]


def current_command():
    """The command line that is running, as a user would type it again: the provenance every
    written artefact's record carries (this process's own arguments when no command-line
    wrapper has set one)."""
    words = _COMMAND or ([os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and
                         sys.argv[0] else ["python"])
    return " ".join(shlex.quote(w) for w in words)


def record_path(params):
    """``x.params`` -> ``x.json`` (the trainer's record of the run that wrote ``x.params``)."""
    return os.path.splitext(str(params))[0] + ".json"


def read_training_json(params):
    """The whole JSON the trainer saved beside ``params`` (``config``, ``split``, ...); None
    when there is none or it cannot be read (one warning). ValueError when it is not a JSON
    object."""
    path = record_path(params)
    if not params or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        logger.warning("cannot read the training record %s", path)
        return None
    if not isinstance(saved, dict):
        raise ValueError("%s is not a training record (not a JSON object)" % path)
    return saved


def read_record(params):
    """The training configuration saved beside ``params`` (a dict), or None when there is no
    readable record."""
    saved = read_training_json(params)
    config = None if saved is None else saved.get("config")
    return config if isinstance(config, dict) else None


def _flag(name, value):
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        if name == "use_se" and not value:
            return "--no-se"
        return flag if value else "--no-" + flag[2:]
    return "%s %s" % (flag, value)


def apply_record(values, params, defaults, fields=SUPERNET_FIELDS):
    """Fill ``values`` (flag name -> value, None = not given) from the record of ``params``.

    A given value that differs from the record raises ValueError naming both; a value not
    given takes the record's, or ``defaults[name]`` when there is no record (one warning).

    Returns
    -------
    dict
        ``values``, completed; ``values['_record']`` names the record used (None if none).
    """
    record = read_record(params)
    if record is None:
        missing = [f for f in fields if values.get(f) is None]
        if missing:
            logger.warning("%s has no training record beside it (%s): using the defaults %s",
                           params, record_path(params),
                           ", ".join(_flag(f, defaults[f]) for f in missing
                                     if defaults.get(f) is not None) or "of each command")
    for name in fields:
        stored = None if record is None else record.get(name)
        given = values.get(name)
        if given is not None and stored is not None and given != stored:
            raise ValueError("%s contradicts the record of %s (%s says %s); leave the flag out "
                             "to use the record" % (_flag(name, given), params,
                                                    os.path.basename(record_path(params)),
                                                    _flag(name, stored)))
        if given is None:
            values[name] = stored if stored is not None else defaults.get(name)
    values["_record"] = None if record is None else record_path(params)
    return values
