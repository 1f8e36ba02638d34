"""FLOPs / params lookup table: stem, tail and every (block, block choice, channel choice).

A subnet's count is the sum of its parts, so one table per configuration (layout, SE, last conv
after pooling, input size, classes) answers any architecture in microseconds, and a whole
population at once with numpy. The parts are counted with the same symbolic counter as whole
subnets (:mod:`.symbolic`), on the blocks the models are built from, so the table agrees with
the symbolic count of the full subnet exactly. Tables are cached as JSON in a user cache
directory; a file that is unreadable or built for another configuration is rebuilt.
"""
import hashlib
import json
import logging
import os

import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from tqdm import tqdm

from .. import __version__
from ..config import ModelConfig, piece_values
from ..files import atomic_write_json
from ..models.blocks import (StaticLayers, make_choice_block, make_head, make_stem, make_tail,
                             stage_activation)
from ..search_space import (Architecture, BLOCK_TYPES, CHANNEL_SCALES, LAST_CONV_CHANNELS, NUM_BLOCKS,
                            NUM_BLOCK_CHOICES, NUM_CHANNEL_CHOICES, SE_FIRST_BLOCK,
                            SE_TAIL_CHANNELS, STAGE_REPEATS, STEM_CHANNELS, block_layout,
                            mid_channels, stage_out_channels)
from .graph import Graph
from .symbolic import DEFAULT_MODEL_CONFIG, MODEL_CONFIG_KEYS, count_graph

__all__ = ["LookupTable", "default_cache_dir", "CACHE_ENV"]

log = logging.getLogger(__name__)

CACHE_ENV = "ONESHOT_NAS_CACHE"
FORMAT_VERSION = 1
_SHAPE = (NUM_BLOCKS, NUM_BLOCK_CHOICES, NUM_CHANNEL_CHOICES)


def default_cache_dir():
    """``$ONESHOT_NAS_CACHE``, else ``$XDG_CACHE_HOME/oneshot_nas``, else
    ``~/.cache/oneshot_nas``."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oneshot_nas")


def _normalise_config(config):
    unknown = set(config) - set(MODEL_CONFIG_KEYS)
    if unknown:
        raise TypeError("unknown model configuration %s; expected some of %s"
                        % (sorted(unknown), ", ".join(MODEL_CONFIG_KEYS)))
    full = dict(DEFAULT_MODEL_CONFIG, **config)
    stage_out_channels(full["channels_layout"])  # validates the layout name
    full["use_se"] = bool(full["use_se"])
    full["last_conv_after_pooling"] = bool(full["last_conv_after_pooling"])
    for key in ("input_size", "classes"):
        if int(full[key]) != full[key] or int(full[key]) <= 0:
            raise ValueError("%s must be a positive integer, got %r" % (key, full[key]))
        full[key] = int(full[key])
    return full


def _space_fingerprint(channels_layout):
    """What the table depends on besides its configuration: the search-space constants and the
    package version (a model change comes with a version bump)."""
    space = dict(stage_repeats=STAGE_REPEATS, layout=stage_out_channels(channels_layout),
                 scales=CHANNEL_SCALES, blocks=BLOCK_TYPES, stem=STEM_CHANNELS,
                 last=LAST_CONV_CHANNELS, se_tail=SE_TAIL_CHANNELS, se_first=SE_FIRST_BLOCK,
                 version=__version__, format=FORMAT_VERSION)
    return hashlib.sha1(json.dumps(space, sort_keys=True).encode()).hexdigest()[:16]


def _count_parts(parts, data_shape):
    """Count several named HybridBlocks applied to one input with one shape inference.

    Returns ``{name: (flops_without_relu_bn, flops_with_relu_bn, params, output_shape)}``.
    """
    data = mx.sym.var("data")
    outputs = [block(data) for _, block in parts]
    graph = Graph(mx.sym.Group(outputs), {"data": data_shape})
    plain, full = count_graph(graph, relu_bn=False), count_graph(graph, relu_bn=True)
    result = {}
    for (name, block), out in zip(parts, outputs):
        prefix = block.prefix
        params = sum(int(np.prod(s)) for n, s in graph.arg_shapes.items()
                     if n.startswith(prefix))
        flops = sum(l.flops for l in plain.layers if l.name.startswith(prefix))
        flops_rb = sum(l.flops for l in full.layers if l.name.startswith(prefix))
        out_shape = graph.output_shape(graph.node_id(out.name))
        result[name] = (flops, flops_rb, params, out_shape)
    return result


class LookupTable:
    """FLOPs and params of every part of the search space for one model configuration.

    Counts follow docs/design.md (section 5) without ReLU and BN (``-norelubn``), the
    convention of every
    FLOPs constraint; the counts including ReLU and BN are kept too.

    Use :meth:`load_or_build`; the constructor takes already counted arrays.

    Parameters
    ----------
    config : dict
        ``channels_layout``, ``use_se``, ``last_conv_after_pooling``, ``input_size``,
        ``classes``.
    base : dict
        ``{'stem': [flops, flops_relu_bn, params], 'tail': [...]}``; the tail includes the
        classifier head.
    blocks : dict
        ``{'flops': int array (20, 4, 10), 'flops_relu_bn': ..., 'params': ...}``.
    """

    def __init__(self, config, base, blocks):
        self.config = _normalise_config(config)
        self.base = {k: [int(v) for v in base[k]] for k in ("stem", "tail")}
        self.block_flops = np.asarray(blocks["flops"], dtype=np.int64).reshape(_SHAPE)
        self.block_flops_relu_bn = np.asarray(blocks["flops_relu_bn"],
                                              dtype=np.int64).reshape(_SHAPE)
        self.block_params = np.asarray(blocks["params"], dtype=np.int64).reshape(_SHAPE)
        for arr in (self.block_flops, self.block_flops_relu_bn, self.block_params):
            if (arr <= 0).any():
                raise ValueError("lookup table holds non-positive counts")
        self.base_flops = self.base["stem"][0] + self.base["tail"][0]
        self.base_flops_relu_bn = self.base["stem"][1] + self.base["tail"][1]
        self.base_params = self.base["stem"][2] + self.base["tail"][2]
        # Plain Python lists for the scalar path: indexing numpy scalars is ~10x slower.
        flat = (NUM_BLOCK_CHOICES * NUM_CHANNEL_CHOICES)
        self._mflops_rows = (self.block_flops.reshape(NUM_BLOCKS, flat) / 1e6).tolist()
        self._mparams_rows = (self.block_params.reshape(NUM_BLOCKS, flat) / 1e6).tolist()
        self._rows = list(zip(self._mflops_rows, self._mparams_rows))

    # ---- queries ---------------------------------------------------------------------------
    def flops_params(self, architecture, relu_bn=False):
        """MFLOPs and millions of params of one architecture.

        Parameters
        ----------
        architecture : Architecture
            Or anything with ``blocks`` and ``channels`` sequences of 20 ints.
        relu_bn : bool
            Include ReLU and BN FLOPs (the "with ReLU + BN" column of docs/design.md, section 5).

        Returns
        -------
        (float, float)
            ``(mflops, mparams)``.
        """
        if not isinstance(architecture, Architecture):
            # an Architecture is validated on construction; anything else is checked here
            # (zip would silently drop the blocks of a short or long input)
            architecture = Architecture(architecture.blocks, architecture.channels)
        if relu_bn:
            f, p = self.flops_params_many(np.asarray([architecture.blocks]),
                                          np.asarray([architecture.channels]), relu_bn=True)
            return float(f[0]), float(p[0])
        flops, params = self.base_flops / 1e6, self.base_params / 1e6
        width = NUM_CHANNEL_CHOICES
        for (row_f, row_p), b, c in zip(self._rows, architecture.blocks, architecture.channels):
            k = b * width + c
            flops += row_f[k]
            params += row_p[k]
        return flops, params

    def flops_params_many(self, block_array, channel_array, relu_bn=False):
        """Vectorised :meth:`flops_params` over a population.

        Parameters
        ----------
        block_array, channel_array : array_like of int, shape (n, 20)
            Block choices (0..3) and channel choices (0..9), one architecture per row.
        relu_bn : bool

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            MFLOPs and millions of params, each of shape ``(n,)``.

        Raises
        ------
        ValueError
            Wrong shapes or choices out of range.
        """
        blocks = np.asarray(block_array)
        channels = np.asarray(channel_array)
        if blocks.ndim == 1:
            blocks, channels = blocks[None], channels[None]
        if blocks.shape != channels.shape or blocks.ndim != 2 or blocks.shape[1] != NUM_BLOCKS:
            raise ValueError("block and channel arrays must both have shape (n, %d), got %s and %s"
                             % (NUM_BLOCKS, blocks.shape, channels.shape))
        if blocks.size and (blocks.min() < 0 or blocks.max() >= NUM_BLOCK_CHOICES
                            or channels.min() < 0 or channels.max() >= NUM_CHANNEL_CHOICES):
            raise ValueError("block choices must be in 0..%d and channel choices in 0..%d"
                             % (NUM_BLOCK_CHOICES - 1, NUM_CHANNEL_CHOICES - 1))
        table_f = self.block_flops_relu_bn if relu_bn else self.block_flops
        base_f = self.base_flops_relu_bn if relu_bn else self.base_flops
        index = (np.arange(NUM_BLOCKS) * (NUM_BLOCK_CHOICES * NUM_CHANNEL_CHOICES)
                 + blocks * NUM_CHANNEL_CHOICES + channels)
        flops = table_f.ravel()[index].sum(axis=1) + base_f
        params = self.block_params.ravel()[index].sum(axis=1) + self.base_params
        return flops / 1e6, params / 1e6

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, progress=True, **config):
        """Count every part of the search space for one configuration.

        Blocks at positions with the same input / output width, stride, activation and SE are
        counted once; all 40 variants of a position share one shape inference.

        Parameters
        ----------
        progress : bool
            Show a progress bar.
        **config
            ``channels_layout``, ``use_se``, ``last_conv_after_pooling``, ``input_size``,
            ``classes``.

        Returns
        -------
        LookupTable
        """
        config = _normalise_config(config)
        use_se = config["use_se"]
        layers = StaticLayers()
        shape = (1, 3, config["input_size"], config["input_size"])
        stem = make_stem(layers, use_se)
        stem_count = _count_parts([("stem", stem)], shape)["stem"]
        shape = stem_count[3]

        flops = np.zeros(_SHAPE, np.int64)
        flops_rb = np.zeros(_SHAPE, np.int64)
        params = np.zeros(_SHAPE, np.int64)
        done = {}
        layout = block_layout(config["channels_layout"])
        bar = tqdm(layout, desc="lookup table %s" % config["channels_layout"], unit="block",
                   disable=not progress, leave=False)
        for i, (stage, in_c, out_c, stride) in enumerate(bar):
            act = stage_activation(stage, use_se)
            se = use_se and i >= SE_FIRST_BLOCK
            key = (in_c, out_c, stride, act, se, tuple(shape))
            if key not in done:
                parts = []
                for b in range(NUM_BLOCK_CHOICES):
                    for c in range(NUM_CHANNEL_CHOICES):
                        parts.append(((b, c), make_choice_block(
                            b, in_c, out_c, mid_channels(out_c, c), stride, act, se, layers,
                            prefix="p%d_b%d_c%d_" % (i, b, c))))
                done[key] = _count_parts(parts, shape)
            counts = done[key]
            for (b, c), (f, frb, p, out_shape) in counts.items():
                flops[i, b, c], flops_rb[i, b, c], params[i, b, c] = f, frb, p
            shape = out_shape

        tail = nn.HybridSequential(prefix="tailhead_")
        with tail.name_scope():
            tail.add(make_tail(layers, layout[-1][2], use_se, config["last_conv_after_pooling"]),
                     make_head(config["classes"], use_se))
        tail_count = _count_parts([("tail", tail)], shape)["tail"]
        base = dict(stem=list(stem_count[:3]), tail=list(tail_count[:3]))
        log.info("built the FLOPs / params lookup table for %s (%d distinct block positions)",
                 config, len(done))
        return cls(config, base, dict(flops=flops, flops_relu_bn=flops_rb, params=params))

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self):
        return dict(format=FORMAT_VERSION, fingerprint=_space_fingerprint(
            self.config["channels_layout"]), config=self.config, base=self.base,
            blocks=dict(flops=self.block_flops.tolist(),
                        flops_relu_bn=self.block_flops_relu_bn.tolist(),
                        params=self.block_params.tolist()))

    @classmethod
    def from_dict(cls, obj, expected_config=None):
        """Inverse of :meth:`to_dict`; ``ValueError`` if stale or for another configuration."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_VERSION:
            raise ValueError("unknown lookup-table format")
        config = _normalise_config(obj["config"])
        if expected_config is not None and config != _normalise_config(expected_config):
            raise ValueError("lookup table was built for %s, not %s" % (config, expected_config))
        if obj.get("fingerprint") != _space_fingerprint(config["channels_layout"]):
            raise ValueError("lookup table was built for another search space or version")
        for part in ("stem", "tail"):
            if len(obj["base"][part]) != 3:
                raise ValueError("malformed %s entry" % part)
        return cls(config, obj["base"], obj["blocks"])

    def save(self, path):
        """Write the table as JSON atomically (a temporary file renamed over ``path``)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path, expected_config=None):
        """Read a table written by :meth:`save`.

        Raises
        ------
        ValueError
            The file is not valid JSON, malformed, stale, or for another configuration.
        """
        try:
            with open(path) as f:
                obj = json.load(f)
            return cls.from_dict(obj, expected_config)
        except (KeyError, TypeError, IndexError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError("malformed lookup table %s: %s" % (path, err)) from None

    @staticmethod
    def cache_path(cache_dir=None, **config):
        """Cache file of a configuration: readable name plus a hash of the configuration."""
        config = _normalise_config(config)
        digest = hashlib.sha1((json.dumps(config, sort_keys=True)
                               + _space_fingerprint(config["channels_layout"])).encode())
        name = "lut-%s-se%d-lcap%d-%d-%d-%s.json" % (
            config["channels_layout"].replace("+", "plus"), config["use_se"],
            config["last_conv_after_pooling"], config["input_size"], config["classes"],
            digest.hexdigest()[:10])
        return os.path.join(cache_dir or default_cache_dir(), "lookup_tables", name)

    @classmethod
    def from_config(cls, cfg, **options):
        """The table of a configuration's supernet shape (a
        :class:`~oneshot_nas.config.ModelConfig`, or a saved configuration dict) in ImageNet
        units (224 px, 1000 classes) unless ``options`` say otherwise; ``options`` go to
        :meth:`load_or_build`."""
        return cls.load_or_build(**piece_values(cfg, ModelConfig), **options)

    @classmethod
    def load_or_build(cls, channels_layout="OneShot", use_se=False,
                      last_conv_after_pooling=False, input_size=224, classes=1000,
                      cache_dir=None, rebuild=False, progress=True):
        """The cached table of a configuration, built (and cached) when missing or invalid.

        Parameters
        ----------
        channels_layout : {'OneShot', 'ShuffleNetV2+'}
        use_se, last_conv_after_pooling : bool
        input_size, classes : int
        cache_dir : str, optional
            Defaults to :func:`default_cache_dir` (``$ONESHOT_NAS_CACHE``).
        rebuild : bool
            Ignore a cached file.
        progress : bool
            Progress bar while building.

        Returns
        -------
        LookupTable
        """
        config = dict(channels_layout=channels_layout, use_se=use_se,
                      last_conv_after_pooling=last_conv_after_pooling, input_size=input_size,
                      classes=classes)
        path = cls.cache_path(cache_dir, **config)
        if not rebuild and os.path.exists(path):
            try:
                table = cls.load(path, expected_config=config)
                log.debug("loaded lookup table %s", path)
                return table
            except (OSError, ValueError) as err:
                log.warning("rebuilding lookup table: %s", err)
        table = cls.build(progress=progress, **config)
        try:
            table.save(path)
            log.info("cached lookup table in %s", path)
        except OSError as err:
            log.warning("could not cache the lookup table in %s (%s); it stays in memory",
                        path, err)
        return table
