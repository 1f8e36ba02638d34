"""Latency lookup table (MnasNet-style platform-aware objective).

Every (block index, block choice, channel choice) is built as a standalone hybridized block and
timed on the current device at a fixed batch (warm-up, then the median of repeats); the stem and
the tail are timed once. A subnet's predicted latency is the sum of its parts.
"""
import json
import logging
import statistics
import time

import mxnet as mx
import numpy as np
from mxnet import nd
from mxnet.gluon import nn
from tqdm import tqdm

from ..models import ShuffleNasOneShotFix
from ..models.blocks import StaticLayers, make_choice_block, make_head, make_stem, make_tail, \
    stage_activation
from ..search_space import (Architecture, NUM_BLOCK_CHOICES, NUM_CHANNEL_CHOICES, SE_FIRST_BLOCK,
                            block_layout, mid_channels)
from ..machine import describe_machine
from ..files import atomic_write_json

__all__ = ["LatencyTable", "time_block"]

logger = logging.getLogger(__name__)


def time_block(block, shape, ctx, warmup=5, repeats=20):
    """Median wall time (ms) of ``block`` on a fixed input of ``shape``."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1, got %d" % repeats)
    x = nd.random.uniform(shape=shape, ctx=ctx)
    for _ in range(warmup):
        block(x).wait_to_read()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        block(x).wait_to_read()
        times.append((time.perf_counter() - tic) * 1e3)
    return statistics.median(times)


def _device_description(ctx):
    return "%s on %s" % (ctx, describe_machine())


class LatencyTable:
    """Per-part latencies (ms) of one model configuration on one device."""

    def __init__(self, config, stem_ms, tail_ms, blocks_ms, device):
        self.config, self.stem_ms, self.tail_ms = config, stem_ms, tail_ms
        self.blocks_ms = np.asarray(blocks_ms)      # (20, 4, 10)
        self.device = device

    @classmethod
    def measure(cls, channels_layout="OneShot", use_se=False, last_conv_after_pooling=False,
                input_size=224, classes=1000, batch_size=1, warmup=5, repeats=20, ctx=mx.cpu(),
                progress=True):
        """Time every part on ``ctx``; returns the table."""
        config = dict(channels_layout=channels_layout, use_se=use_se,
                      last_conv_after_pooling=last_conv_after_pooling, input_size=input_size,
                      classes=classes, batch_size=batch_size)
        layers = StaticLayers()
        layout = block_layout(channels_layout)

        def ready(block):
            block.initialize(mx.init.Xavier(), ctx=ctx)
            block.hybridize(static_alloc=True, static_shape=True)
            return block

        size = input_size // 2
        stem_ms = time_block(ready(make_stem(layers, use_se)),
                             (batch_size, 3, input_size, input_size), ctx, warmup, repeats)
        blocks_ms = np.zeros((len(layout), NUM_BLOCK_CHOICES, NUM_CHANNEL_CHOICES))
        shapes = []
        for stage, in_c, out_c, stride in layout:
            shapes.append((batch_size, in_c, size, size))
            size //= stride
        bar = tqdm(total=blocks_ms.size, desc="latency table", unit="block", disable=not progress)
        for i, (stage, in_c, out_c, stride) in enumerate(layout):
            for b in range(NUM_BLOCK_CHOICES):
                for c in range(NUM_CHANNEL_CHOICES):
                    blk = make_choice_block(b, in_c, out_c, mid_channels(out_c, c), stride,
                                            stage_activation(stage, use_se),
                                            use_se and i >= SE_FIRST_BLOCK, layers)
                    blocks_ms[i, b, c] = time_block(ready(blk), shapes[i], ctx, warmup, repeats)
                    bar.update(1)
        bar.close()
        tail = nn.HybridSequential()
        tail.add(make_tail(layers, layout[-1][2], use_se, last_conv_after_pooling),
                 make_head(classes, use_se))
        tail_ms = time_block(ready(tail), (batch_size, layout[-1][2], size, size), ctx, warmup,
                             repeats)
        logger.info("latency table: stem %.3f ms, tail %.3f ms, blocks %.3f..%.3f ms", stem_ms,
                    tail_ms, blocks_ms.min(), blocks_ms.max())
        return cls(config, stem_ms, tail_ms, blocks_ms, _device_description(ctx))

    def predict(self, arch):
        """Predicted latency (ms) of a subnet."""
        idx = np.arange(len(arch.blocks))
        return float(self.stem_ms + self.tail_ms
                     + self.blocks_ms[idx, list(arch.blocks), list(arch.channels)].sum())

    def to_dict(self):
        return {"config": self.config, "device": self.device, "stem_ms": self.stem_ms,
                "tail_ms": self.tail_ms, "blocks_ms": self.blocks_ms.tolist()}

    def save(self, path):
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path, expected_config=None):
        """Load a table; ValueError naming the file if unreadable or for another model."""
        try:
            with open(path) as f:
                obj = json.load(f)
            table = cls(obj["config"], obj["stem_ms"], obj["tail_ms"], obj["blocks_ms"],
                        obj["device"])
        except (OSError, ValueError, KeyError) as err:
            raise ValueError("latency table %s cannot be read: %s" % (path, err)) from None
        if table.blocks_ms.shape != (len(block_layout(table.config["channels_layout"])),
                                     NUM_BLOCK_CHOICES, NUM_CHANNEL_CHOICES):
            raise ValueError("latency table %s has shape %s, not one entry per block choice"
                             % (path, table.blocks_ms.shape))
        if expected_config:
            for key, value in expected_config.items():
                if key in table.config and table.config[key] != value:
                    raise ValueError("latency table %s was measured for %s=%r, not %r"
                                     % (path, key, table.config[key], value))
        return table


def check_latency_table(table, n=10, seed=0, warmup=5, repeats=20, ctx=mx.cpu()):
    """Predicted vs measured end-to-end latency of ``n`` random subnets.

    Returns a list of ``(architecture, predicted_ms, measured_ms)``.
    """
    cfg = table.config
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arch = Architecture.sample(rng)
        net = ShuffleNasOneShotFix(arch, channels_layout=cfg["channels_layout"],
                                   use_se=cfg["use_se"],
                                   last_conv_after_pooling=cfg["last_conv_after_pooling"],
                                   classes=cfg["classes"])
        net.initialize(mx.init.Xavier(), ctx=ctx)
        net.hybridize(static_alloc=True, static_shape=True)
        size = cfg["input_size"]
        measured = time_block(net, (cfg["batch_size"], 3, size, size), ctx, warmup, repeats)
        rows.append((arch, table.predict(arch), measured))
        logger.info("latency check %d/%d: predicted %.3f ms, measured %.3f ms", i + 1, n,
                    rows[-1][1], measured)
    return rows
