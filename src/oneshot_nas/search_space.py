"""The search space, defined once: stages, channel layouts, scales, block types, `Architecture`.

Every other module (models, training, search, profiling) reads these constants and decodes
architectures through :class:`Architecture`; nothing else repeats them.
"""
import json
import operator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "STAGE_REPEATS", "NUM_BLOCKS", "CHANNEL_LAYOUTS", "CHANNEL_SCALES", "BLOCK_TYPES",
    "NUM_BLOCK_CHOICES", "NUM_CHANNEL_CHOICES", "STEM_CHANNELS", "LAST_CONV_CHANNELS",
    "SE_TAIL_CHANNELS", "SE_FIRST_BLOCK", "Architecture", "stage_out_channels", "block_layout",
    "mid_channels", "make_divisible", "channel_warmup_min_index", "CS_WARMUP_UNLOCKED",
]

STAGE_REPEATS = (4, 4, 8, 4)
NUM_BLOCKS = sum(STAGE_REPEATS)
CHANNEL_LAYOUTS = {
    "OneShot": (64, 160, 320, 640),
    "ShuffleNetV2+": (48, 128, 256, 512),
}
CHANNEL_SCALES = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0)
# index -> (name, depthwise kernel); index 3 is the ShuffleXception block.
BLOCK_TYPES = (("SNB-3", 3), ("SNB-5", 5), ("SNB-7", 7), ("SXB-3", 3))
NUM_BLOCK_CHOICES = len(BLOCK_TYPES)
NUM_CHANNEL_CHOICES = len(CHANNEL_SCALES)
STEM_CHANNELS = 16
LAST_CONV_CHANNELS = 1024
SE_TAIL_CHANNELS = 768
# SE modules sit in stages 2 and 3 only.
SE_FIRST_BLOCK = STAGE_REPEATS[0] + STAGE_REPEATS[1]

# Channel-selection warm-up: number of extra scales unlocked e epochs after --epoch-start-cs.
CS_WARMUP_UNLOCKED = (0, 1, 2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8)


def stage_out_channels(channels_layout):
    """Output widths of the four stages for a layout name (``OneShot`` or ``ShuffleNetV2+``)."""
    try:
        return CHANNEL_LAYOUTS[channels_layout]
    except KeyError:
        raise ValueError("unknown channels_layout %r; choose one of %s"
                         % (channels_layout, ", ".join(CHANNEL_LAYOUTS))) from None


def block_layout(channels_layout):
    """Per-block ``(stage, in_channels, out_channels, stride)`` for all 20 choice blocks."""
    outs = stage_out_channels(channels_layout)
    layout, in_c = [], STEM_CHANNELS
    for stage, (repeats, out_c) in enumerate(zip(STAGE_REPEATS, outs)):
        for i in range(repeats):
            layout.append((stage, in_c, out_c, 2 if i == 0 else 1))
            in_c = out_c
    return layout


def mid_channels(out_channels, channel_choice):
    """Searched (mid) width of a block: ``int(out // 2 * scale)``, the one rule used everywhere."""
    return int(out_channels // 2 * CHANNEL_SCALES[channel_choice])


def make_divisible(value, divisor=8, min_value=None):
    """Round ``value`` to a multiple of ``divisor`` without going below 90 % of it."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def channel_warmup_min_index(epoch, epoch_start_cs, ignore_first_two_cs=False):
    """Lowest channel-choice index that may be sampled at ``epoch`` under the warm-up schedule.

    Before ``epoch_start_cs`` only the maximum width (index 9) is used; afterwards the range
    widens by the unlock table ``CS_WARMUP_UNLOCKED`` (docs/design.md, section 3).
    """
    floor = 2 if ignore_first_two_cs else 0
    if epoch < epoch_start_cs:
        return NUM_CHANNEL_CHOICES - 1
    e = epoch - epoch_start_cs
    unlocked = CS_WARMUP_UNLOCKED[e] if e < len(CS_WARMUP_UNLOCKED) else e
    return max(floor, NUM_CHANNEL_CHOICES - unlocked - 2)


def _parse_int_list(text, what):
    if isinstance(text, str):
        items = [t for t in text.replace("[", "").replace("]", "").split(",")]
        if items and items[-1].strip() == "":
            items = items[:-1]
        values = []
        for pos, item in enumerate(items):
            item = item.strip()
            try:
                values.append(int(item))
            except ValueError:
                raise ValueError("%s: position %d is %r, not an integer" % (what, pos, item)) from None
        return tuple(values)
    return _choices(text, what)


def _choices(values, what):
    """``values`` as a tuple of ints; integral floats (``2.0``) pass, ``1.7`` or ``'x'`` do not
    (a truncated choice would silently be another architecture)."""
    out = []
    for pos, v in enumerate(values):
        try:
            out.append(operator.index(v))         # int, numpy integers
            continue
        except TypeError:
            pass
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            out.append(int(v))
        else:
            raise ValueError("%s: position %d is %r, not an integer" % (what, pos, v))
    return tuple(out)


@dataclass(frozen=True)
class Architecture:
    """One subnet of the search space: 20 block choices and 20 channel choices.

    Parameters
    ----------
    blocks : tuple of int
        Block type index per choice block (0..3, see ``BLOCK_TYPES``).
    channels : tuple of int
        Channel-scale index per choice block (0..9, see ``CHANNEL_SCALES``).
    """

    blocks: tuple
    channels: tuple

    def __post_init__(self):
        object.__setattr__(self, "blocks", _choices(self.blocks, "block choices"))
        object.__setattr__(self, "channels", _choices(self.channels, "channel choices"))
        for what, values, limit in (("block choices", self.blocks, NUM_BLOCK_CHOICES),
                                    ("channel choices", self.channels, NUM_CHANNEL_CHOICES)):
            if len(values) != NUM_BLOCKS:
                raise ValueError("%s: expected %d values, got %d"
                                 % (what, NUM_BLOCKS, len(values)))
            for pos, v in enumerate(values):
                if not 0 <= v < limit:
                    raise ValueError("%s: position %d is %d, must be in 0..%d"
                                     % (what, pos, v, limit - 1))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, block_choices, channel_choices=None):
        """Parse the CLI form ``'0, 0, 3, 1, ...'`` (or sequences). Channels default to 1.0x."""
        blocks = _parse_int_list(block_choices, "block choices")
        if channel_choices is None or channel_choices == "":
            channels = (CHANNEL_SCALES.index(1.0),) * NUM_BLOCKS
        else:
            channels = _parse_int_list(channel_choices, "channel choices")
        return cls(blocks, channels)

    @classmethod
    def parse_channels(cls, channel_choices):
        """Channel choices alone (e.g. fixed channel genes), validated as an architecture's."""
        return cls.parse((0,) * NUM_BLOCKS, channel_choices).channels

    @classmethod
    def from_json(cls, text):
        """Inverse of :meth:`to_json`; accepts a JSON string or an already decoded dict."""
        obj = json.loads(text) if isinstance(text, str) else text
        try:
            return cls(obj["blocks"], obj["channels"])
        except (KeyError, TypeError):
            raise ValueError("architecture JSON needs 'blocks' and 'channels' lists, got %r"
                             % (obj,)) from None

    def to_json(self):
        return json.dumps({"blocks": list(self.blocks), "channels": list(self.channels)})

    @classmethod
    def largest(cls):
        return cls((0,) * NUM_BLOCKS, (NUM_CHANNEL_CHOICES - 1,) * NUM_BLOCKS)

    @classmethod
    def smallest(cls):
        return cls((0,) * NUM_BLOCKS, (0,) * NUM_BLOCKS)

    @classmethod
    def sample(cls, rng=None, min_channel_index=0, max_channel_index=NUM_CHANNEL_CHOICES - 1,
               fixed_blocks=None, fixed_channels=None):
        """Uniformly sample an architecture.

        Parameters
        ----------
        rng : numpy.random.Generator or RandomState, optional
        min_channel_index, max_channel_index : int
            Inclusive range of channel-choice indices (the warm-up schedule narrows it).
        fixed_blocks, fixed_channels : sequence of int, optional
            Keep one half of the genes fixed (use-all-channels passes ``(9,) * 20``).
        """
        rng = np.random.default_rng() if rng is None else rng
        integers = rng.integers if hasattr(rng, "integers") else rng.randint
        blocks = (fixed_blocks if fixed_blocks is not None
                  else integers(0, NUM_BLOCK_CHOICES, NUM_BLOCKS))
        channels = (fixed_channels if fixed_channels is not None
                    else integers(min_channel_index, max_channel_index + 1, NUM_BLOCKS))
        return cls(tuple(blocks), tuple(channels))

    @classmethod
    def sample_for_epoch(cls, epoch, rng=None, epoch_start_cs=0, cs_warm_up=False,
                         ignore_first_two_cs=False, use_all_channels=False):
        """Sample with the supernet-training schedule of docs/design.md, section 3."""
        top = NUM_CHANNEL_CHOICES - 1
        if use_all_channels or epoch < epoch_start_cs:
            return cls.sample(rng, fixed_channels=(top,) * NUM_BLOCKS)
        if cs_warm_up:
            low = channel_warmup_min_index(epoch, epoch_start_cs, ignore_first_two_cs)
        else:
            low = 2 if ignore_first_two_cs else 0
        return cls.sample(rng, min_channel_index=low)

    # ---- views ----------------------------------------------------------------------------
    def block_string(self):
        return ",".join(str(b) for b in self.blocks)

    def channel_string(self):
        return ",".join(str(c) for c in self.channels)

    def mid_channels(self, channels_layout):
        """Mid width of every choice block under a layout."""
        return [mid_channels(out_c, c) for (_, _, out_c, _), c
                in zip(block_layout(channels_layout), self.channels)]

    def __str__(self):
        return "blocks=[%s] channels=[%s]" % (self.block_string(), self.channel_string())
