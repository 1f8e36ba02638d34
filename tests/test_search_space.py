import json

import numpy as np
import pytest

from oneshot_nas import Architecture
from oneshot_nas.search_space import (CHANNEL_SCALES, NUM_BLOCKS, block_layout,
                                      channel_warmup_min_index, mid_channels)

S_PLUS = ("0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0", "8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6")


def test_parse_cli_form_and_json_round_trip():
    arch = Architecture.parse("0, 0, 0, 1, 0, 0, 1, 0, 3, 2, 0, 1, 2, 2, 1, 2, 0, 0, 2, 0",
                              S_PLUS[1])
    assert arch.blocks[8] == 3 and arch.channels[0] == 8
    assert Architecture.from_json(arch.to_json()) == arch
    assert json.loads(arch.to_json())["blocks"] == list(arch.blocks)
    assert Architecture.parse(arch.block_string(), arch.channel_string()) == arch


@pytest.mark.parametrize("blocks,channels,message", [
    ("0,0,0", S_PLUS[1], "block choices: expected 20 values, got 3"),
    (S_PLUS[0], "1," * 21, "channel choices: expected 20 values, got 21"),
    (S_PLUS[0].replace("3", "4", 1), S_PLUS[1], "block choices: position 8 is 4, must be in 0..3"),
    (S_PLUS[0], "10" + S_PLUS[1][1:], "channel choices: position 0 is 10, must be in 0..9"),
    (S_PLUS[0], "-1" + S_PLUS[1][1:], "channel choices: position 0 is -1, must be in 0..9"),
    ("a" + S_PLUS[0][1:], S_PLUS[1], "block choices: position 0 is 'a', not an integer"),
])
def test_bad_architecture_gives_one_line_value_error(blocks, channels, message):
    with pytest.raises(ValueError) as err:
        Architecture.parse(blocks, channels)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_mid_channel_rule_matches_spec():
    assert [mid_channels(64, c) for c in range(10)] == [6, 12, 19, 25, 32, 38, 44, 51, 57, 64]
    # maximum width of the supernet is the block's output width
    for _, _, out_c, _ in block_layout("OneShot") + block_layout("ShuffleNetV2+"):
        assert mid_channels(out_c, len(CHANNEL_SCALES) - 1) == out_c


def test_block_layout_strides():
    layout = block_layout("OneShot")
    assert len(layout) == NUM_BLOCKS
    assert [i for i, (_, _, _, s) in enumerate(layout) if s == 2] == [0, 4, 8, 16]
    assert layout[0][1:3] == (16, 64) and layout[-1][1:3] == (640, 640)


def test_channel_warmup_schedule():
    # before the start only the maximum width; at the start {1.8, 2.0}; 18 epochs later all ten
    assert channel_warmup_min_index(59, 60) == 9
    assert channel_warmup_min_index(60, 60) == 8
    assert channel_warmup_min_index(61, 60) == 7
    assert channel_warmup_min_index(65, 60) == 4
    assert channel_warmup_min_index(77, 60) == 1
    assert channel_warmup_min_index(78, 60) == 0
    assert channel_warmup_min_index(200, 60) == 0
    assert channel_warmup_min_index(200, 60, ignore_first_two_cs=True) == 2
    # seeds: epochs 70-73 (1-based) sample [0.6 .. 2.0] for E = 60, i.e. 0-based 69..72 -> index 2
    assert [channel_warmup_min_index(e, 60) for e in range(69, 73)] == [2, 2, 2, 2]


def test_sampling_respects_ranges():
    rng = np.random.default_rng(0)
    archs = [Architecture.sample(rng, min_channel_index=4) for _ in range(200)]
    assert min(min(a.channels) for a in archs) == 4
    assert {b for a in archs for b in a.blocks} == {0, 1, 2, 3}
    early = Architecture.sample_for_epoch(3, rng, epoch_start_cs=10, cs_warm_up=True)
    assert set(early.channels) == {9}
    late = [Architecture.sample_for_epoch(60, rng, epoch_start_cs=0, ignore_first_two_cs=True)
            for _ in range(100)]
    assert min(min(a.channels) for a in late) == 2
    everything = Architecture.sample_for_epoch(60, rng, use_all_channels=True)
    assert set(everything.channels) == {9}
