"""Architecture samplers for supernet training: uniform, constrained random, strolling evolution,
uniform over FLOPs bins, strictly fair (four paths a step).

Every sampler yields a deterministic stream of architectures per epoch, seeded by
``(seed, epoch)``: all Horovod workers draw the same path at the same step, and a resumed run
draws what the uninterrupted run drew. :class:`Prefetcher` runs a stream in a background
thread so that sampling never stalls the step loop.
"""
import logging
import queue
import re
import threading
from dataclasses import dataclass

import numpy as np

from ..search_space import (NUM_BLOCK_CHOICES, NUM_BLOCKS, NUM_CHANNEL_CHOICES, Architecture,
                            channel_warmup_min_index)

__all__ = ["ConstraintBox", "parse_constraint", "UniformSampler", "ConstrainedRandomSampler",
           "StrollingEvolutionSampler", "FlopsBinSampler", "FairSampler", "FLOPS_BINS",
           "Prefetcher", "make_sampler"]

logger = logging.getLogger(__name__)

FLOPS_BINS = 7      # --flops-bins default: the official SPOS code's 7 bins

_CONSTRAINT = re.compile(r"^flops-([0-9.]+)-params-([0-9.]+)$")


def parse_constraint(text):
    """``'flops-330-params-5.0'`` -> ``(330.0, 5.0)`` (MFLOPs, millions of parameters)."""
    m = _CONSTRAINT.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError("constraint %r is not of the form flops-<MFLOPs>-params-<M params>, "
                         "e.g. flops-330-params-5.0" % (text,))
    return float(m.group(1)), float(m.group(2))


@dataclass(frozen=True)
class ConstraintBox:
    """Inclusive FLOPs / params box (MFLOPs, M params)."""

    flops_min: float
    flops_max: float
    params_min: float
    params_max: float

    @classmethod
    def from_strings(cls, upper, bottom=None):
        fmax, pmax = parse_constraint(upper)
        fmin, pmin = parse_constraint(bottom) if bottom else (0.0, 0.0)
        if fmin > fmax or pmin > pmax:
            raise ValueError("bottom constraint %s lies above upper constraint %s"
                             % (bottom, upper))
        return cls(fmin, fmax, pmin, pmax)

    def contains(self, flops, params):
        flops, params = np.asarray(flops), np.asarray(params)
        return ((flops >= self.flops_min) & (flops <= self.flops_max)
                & (params >= self.params_min) & (params <= self.params_max))

    def __str__(self):
        return "flops [%g, %g] M, params [%g, %g] M" % (self.flops_min, self.flops_max,
                                                        self.params_min, self.params_max)


class UniformSampler:
    """Uniform block choices; channel choices per the warm-up schedule of docs/design.md, section 3.

    Parameters
    ----------
    seed : int
    epoch_start_cs : int
        First epoch with channel selection (before it: maximum width).
    cs_warm_up, ignore_first_two_cs, use_all_channels : bool
        See :meth:`Architecture.sample_for_epoch`.
    """

    def __init__(self, seed=0, epoch_start_cs=0, cs_warm_up=False, ignore_first_two_cs=False,
                 use_all_channels=False):
        self.seed = seed
        self.schedule = dict(epoch_start_cs=epoch_start_cs, cs_warm_up=cs_warm_up,
                             ignore_first_two_cs=ignore_first_two_cs,
                             use_all_channels=use_all_channels)

    def channel_range(self, epoch):
        """Inclusive (low, high) channel-choice indices allowed at ``epoch``."""
        s = self.schedule
        top = NUM_CHANNEL_CHOICES - 1
        if s["use_all_channels"] or epoch < s["epoch_start_cs"]:
            return top, top
        if s["cs_warm_up"]:
            return channel_warmup_min_index(epoch, s["epoch_start_cs"],
                                            s["ignore_first_two_cs"]), top
        return (2 if s["ignore_first_two_cs"] else 0), top

    def _rng(self, epoch):
        return np.random.default_rng([self.seed, epoch])

    def _draw(self, rng, epoch, n):
        low, high = self.channel_range(epoch)
        blocks = rng.integers(0, NUM_BLOCK_CHOICES, (n, NUM_BLOCKS))
        channels = rng.integers(low, high + 1, (n, NUM_BLOCKS))
        return blocks, channels

    def stream(self, epoch):
        """Endless iterator of architectures for ``epoch``."""
        rng = self._rng(epoch)
        while True:
            blocks, channels = self._draw(rng, epoch, 64)
            for b, c in zip(blocks, channels):
                yield Architecture(b, c)


class FairSampler(UniformSampler):
    """Strict fairness (FairNAS): every step yields ``NUM_BLOCK_CHOICES`` paths that share their
    channel choices and, layer by layer, take the four block types in a random order, so that
    one update trains every block of every layer exactly once."""

    def stream(self, epoch):
        rng = self._rng(epoch)
        low, high = self.channel_range(epoch)
        while True:
            channels = rng.integers(low, high + 1, NUM_BLOCKS)
            order = np.stack([rng.permutation(NUM_BLOCK_CHOICES) for _ in range(NUM_BLOCKS)],
                             axis=1)            # (paths, layers): each column a permutation
            yield tuple(Architecture(blocks, channels) for blocks in order)


class ConstrainedRandomSampler(UniformSampler):
    """Uniform samples, rejecting those outside a FLOPs / params box.

    Parameters
    ----------
    flops_params_many : callable
        ``(blocks (n, 20), channels (n, 20)) -> (mflops (n,), mparams (n,))``, e.g. the
        vectorised lookup table.
    box : ConstraintBox
    max_tries : int
        Candidates to draw before concluding that the box admits no architecture.
    """

    def __init__(self, flops_params_many, box, max_tries=200000, **kwargs):
        super().__init__(**kwargs)
        self.flops_params_many, self.box, self.max_tries = flops_params_many, box, max_tries

    def _inside(self, rng, epoch, n=512):
        """Draw until ``n``-sized batches yield candidates inside the box."""
        tried = 0
        while tried < self.max_tries:
            blocks, channels = self._draw(rng, epoch, n)
            tried += n
            flops, params = self.flops_params_many(blocks, channels)
            keep = self.box.contains(flops, params)
            if keep.any():
                return blocks[keep], channels[keep], flops[keep], params[keep]
        low, high = self.channel_range(epoch)
        raise ValueError("no architecture inside the constraint box (%s) after %d random "
                         "samples with channel choices %d..%d; widen the box"
                         % (self.box, tried, low, high))

    def stream(self, epoch):
        rng = self._rng(epoch)
        while True:
            blocks, channels, _, _ = self._inside(rng, epoch)
            for b, c in zip(blocks, channels):
                yield Architecture(b, c)


class StrollingEvolutionSampler(ConstrainedRandomSampler):
    """Strolling evolution (docs/design.md, section 4): a small genetic pool walks the FLOPs
    range of the box in ``cuts`` bins up and down, emitting alternately the largest- and
    smallest-params child of each generation, so that samples cover the whole box."""

    def __init__(self, flops_params_many, box, parents=5, children=10, mutate=0.1, cuts=7,
                 **kwargs):
        super().__init__(flops_params_many, box, **kwargs)
        self.parents, self.children, self.mutate, self.cuts = parents, children, mutate, cuts

    def _targets(self):
        """Bin index sequence 0..cuts-1, cuts-2..1, repeated (up and down)."""
        up = list(range(self.cuts))
        return up + up[-2:0:-1]

    def stream(self, epoch):
        rng = self._rng(epoch)
        low, high = self.channel_range(epoch)
        edges = np.linspace(self.box.flops_min, self.box.flops_max, self.cuts + 1)
        blocks, channels, flops, _ = self._inside(rng, epoch)
        order = np.argsort(flops)
        pool_b, pool_c = blocks[order][: self.parents], channels[order][: self.parents]
        targets, large = self._targets(), True
        step = 0
        while True:
            target = targets[step % len(targets)]
            lo, hi = edges[target], edges[target + 1]
            mid = (lo + hi) / 2
            best = None
            for _ in range(50):
                # uniform crossover between random parent pairs, then per-gene mutation
                pa = rng.integers(0, len(pool_b), self.children)
                pb = rng.integers(0, len(pool_b), self.children)
                take_a = rng.random((self.children, NUM_BLOCKS)) < 0.5
                cb = np.where(take_a, pool_b[pa], pool_b[pb])
                cc = np.where(take_a, pool_c[pa], pool_c[pb])
                mut_b = rng.random(cb.shape) < self.mutate
                mut_c = rng.random(cc.shape) < self.mutate
                cb = np.where(mut_b, rng.integers(0, NUM_BLOCK_CHOICES, cb.shape), cb)
                cc = np.where(mut_c, rng.integers(low, high + 1, cc.shape), cc)
                f, p = self.flops_params_many(cb, cc)
                inside = self.box.contains(f, p)
                # parents for the next round: the children nearest the target bin's centre
                near = np.argsort(np.abs(f - mid) + np.where(inside, 0, 1e9))
                pool_b = np.concatenate([cb[near], pool_b])[: self.parents]
                pool_c = np.concatenate([cc[near], pool_c])[: self.parents]
                in_bin = inside & (f >= lo) & (f <= hi)
                if in_bin.any():
                    idx = np.flatnonzero(in_bin)
                    pick = idx[np.argmax(p[idx])] if large else idx[np.argmin(p[idx])]
                    best = (cb[pick], cc[pick])
                    break
                if inside.any() and best is None:
                    idx = np.flatnonzero(inside)
                    pick = idx[np.argmin(np.abs(f[idx] - mid))]
                    best = (cb[pick], cc[pick])
            if best is None:
                b, c, _, _ = self._inside(rng, epoch, n=64)
                best = (b[0], c[0])
            large = not large
            step += 1
            yield Architecture(best[0], best[1])


class FlopsBinSampler(ConstrainedRandomSampler):
    """Uniform over FLOPs bins, as the official SPOS supernet training samples: the box's FLOPs
    range is cut into ``bins`` equal bins; every step picks a bin uniformly, then a uniformly
    drawn architecture that falls into it (so small and large networks are trained as often
    as the middle ones, which uniform sampling favours).

    Draws come in batches and are kept per bin (at most ``keep`` each), so a rare bin costs a
    few batches rather than a loop per step. A bin that ``pilot`` draws of the epoch's channel
    range never reach is left out for that epoch and logged. When none is reachable: in the
    full-width epochs before channel selection starts the blocks are drawn uniformly (logged);
    otherwise the stream fails.
    """

    def __init__(self, flops_params_many, box, bins=FLOPS_BINS, pilot=8192, keep=2048,
                 **kwargs):
        super().__init__(flops_params_many, box, **kwargs)
        if int(bins) < 1:
            raise ValueError("--flops-bins must be >= 1, got %s" % bins)
        self.bins, self.pilot, self.keep = int(bins), pilot, keep

    def edges(self):
        """The ``bins + 1`` FLOPs edges (MFLOPs) across the box."""
        return np.linspace(self.box.flops_min, self.box.flops_max, self.bins + 1)

    def _bucket(self, rng, epoch, pools, n=512):
        """Draw ``n`` architectures; append those inside the box to their bin's pool."""
        blocks, channels = self._draw(rng, epoch, n)
        flops, params = self.flops_params_many(blocks, channels)
        inside = self.box.contains(flops, params)
        which = np.clip(np.searchsorted(self.edges(), flops, side="right") - 1, 0, self.bins - 1)
        for i in np.flatnonzero(inside):
            pool = pools[which[i]]
            if len(pool) < self.keep:
                pool.append((blocks[i], channels[i]))

    def stream(self, epoch):
        rng = self._rng(epoch)
        pools = [[] for _ in range(self.bins)]
        for _ in range(max(1, self.pilot // 512)):
            self._bucket(rng, epoch, pools)
        live = [b for b in range(self.bins) if pools[b]]
        low, high = self.channel_range(epoch)
        if not live and low == high == NUM_CHANNEL_CHOICES - 1:
            # full-width warm-up epochs (before --epoch-start-cs): no FLOPs bin, uniform blocks
            logger.info("epoch %d: full width, no FLOPs bin within reach: uniform blocks until "
                        "channel selection starts", epoch)
            yield from UniformSampler.stream(self, epoch)
            return
        if not live:
            raise ValueError("no architecture inside the constraint box (%s) in %d random "
                             "samples with channel choices %d..%d; widen the box"
                             % (self.box, self.pilot, low, high))
        if len(live) < self.bins:
            edges = self.edges()
            logger.info("epoch %d: FLOPs bins %s out of reach of this epoch's channel range; "
                        "sampling the other %d uniformly", epoch, ", ".join(
                            "%.0f-%.0f" % (edges[b], edges[b + 1])
                            for b in range(self.bins) if b not in live), len(live))
        while True:
            b = live[rng.integers(0, len(live))]
            tried = 0
            while not pools[b]:
                self._bucket(rng, epoch, pools)
                tried += 512
                if tried > self.max_tries:
                    raise ValueError("FLOPs bin %d (%s) stopped yielding architectures after %d "
                                     "draws" % (b, self.edges()[b:b + 2], tried))
            blocks, channels = pools[b].pop(0)
            yield Architecture(blocks, channels)


class Prefetcher:
    """Runs ``stream`` in a daemon thread, keeping ``depth`` architectures ready.

    Errors raised by the stream (an empty constraint box) are re-raised by :meth:`next`.
    """

    _DONE = object()

    def __init__(self, stream, depth=64, skip=0):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(stream, skip), daemon=True)
        self._thread.start()

    def _run(self, stream, skip):
        try:
            for i, arch in enumerate(stream):
                if self._stop.is_set():
                    return
                if i < skip:
                    continue
                while not self._stop.is_set():
                    try:
                        self._queue.put(arch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as err:  # surfaced to the consumer
            self._queue.put(err)

    def next(self):
        item = self._queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self._stop.set()


def make_sampler(method=None, flops_params_many=None, box=None, fair=False, **kwargs):
    """``method`` None -> uniform (``fair``: strictly fair steps of four paths); ``'random'`` /
    ``'evolution'`` / ``'bins'`` need the box and counter (``bins=N``: the FLOPs bins of
    ``'bins'``)."""
    if fair:
        if method is not None or box is not None:
            raise ValueError("strict fairness trains the four block types of every layer at "
                             "each step: no constraint box can hold all four paths")
        return FairSampler(**kwargs)
    if method is None:
        if box is not None:
            raise ValueError("a constraint box needs a constraint method (random or evolution)")
        return UniformSampler(**kwargs)
    if box is None:
        raise ValueError("--train-constraint-method %s needs --train-upper-constraints"
                         % method)
    if flops_params_many is None:
        raise ValueError("constrained sampling needs a FLOPs / params counter")
    if method == "random":
        return ConstrainedRandomSampler(flops_params_many, box, **kwargs)
    if method == "evolution":
        return StrollingEvolutionSampler(flops_params_many, box, **kwargs)
    if method == "bins":
        return FlopsBinSampler(flops_params_many, box, **kwargs)
    raise ValueError("unknown train constraint method %r; choose random, evolution or bins"
                     % method)
