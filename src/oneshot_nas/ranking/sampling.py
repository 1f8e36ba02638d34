"""Architectures spread over the FLOPs range a set of constraints admits."""
import numpy as np

from ..profiling import FlopsCounter
from ..search.algorithms import sample_population
from ..search_space import NUM_BLOCK_CHOICES, NUM_BLOCKS, NUM_CHANNEL_CHOICES, Architecture

__all__ = ["sample_spread", "sample_matched"]


def sample_spread(k, counter, constraints, seed=0, pool_per_band=200, band_halfwidth=1):
    """``k`` distinct architectures under ``constraints``, spread over the admissible FLOPs.

    A pool is drawn from width bands (channel choices in ``[c - h, c + h]`` for every scale
    ``c``; bands the constraints exclude are skipped); then the architectures at the FLOPs
    quantiles ``(i + 0.5) / k`` are taken.

    Returns
    -------
    list of Architecture, sorted by FLOPs
    """
    rng = np.random.default_rng(seed)
    blocks, channels = [], []
    for centre in range(NUM_CHANNEL_CHOICES):
        band = (max(0, centre - band_halfwidth),
                min(NUM_CHANNEL_CHOICES - 1, centre + band_halfwidth))
        try:
            b, c = sample_population(rng, pool_per_band, counter, constraints,
                                     channel_range=band, max_tries=20 * 1024)
        except ValueError:
            continue                # this width band lies outside the constraints
        blocks.append(b)
        channels.append(c)
    if not blocks:
        raise ValueError("the constraints (%s) admit no architecture; relax them" % constraints)
    blocks, channels = np.concatenate(blocks), np.concatenate(channels)
    flops, _ = counter(blocks, channels)
    order = np.argsort(flops, kind="stable")
    picks, used, n = [], set(), len(order)
    for q in (np.arange(k) + 0.5) / k:
        target, found = int(q * n), None
        # the quantile's pool member, or its nearest unused neighbour in FLOPs order
        for step in range(n):
            for pos in (target + step, target - step):
                if 0 <= pos < n:
                    arch = Architecture(blocks[order[pos]], channels[order[pos]])
                    if arch not in used:
                        found = arch
                        break
            if found is not None:
                break
        if found is None:
            raise ValueError("the constraints (%s) admit fewer than %d distinct architectures"
                             % (constraints, k))
        used.add(found)
        picks.append(found)
    counter = FlopsCounter.wrap(counter)
    return sorted(picks, key=lambda a: counter.one(a)[0])


def sample_matched(k, counter, target, tolerance=0.03, seed=0, exclude=(), pool=4000,
                   max_draws=400000):
    """``k`` distinct architectures within ``tolerance`` (a fraction) of ``target`` MFLOPs,
    as different from each other as possible.

    Uniformly drawn architectures inside the FLOPs window form a pool; starting from its first
    member, each next pick is the pool member farthest (in choices that differ, block and
    channel choices of every layer counted separately) from those already picked, so the set
    varies block types and widths instead of clustering around one kind of net.

    Returns
    -------
    list of Architecture, in the order picked
    """
    rng = np.random.default_rng(seed)
    low, high = target * (1 - tolerance), target * (1 + tolerance)
    skip = {(tuple(a.blocks), tuple(a.channels)) for a in exclude}
    found, seen, drawn = [], set(), 0
    while len(found) < pool and drawn < max_draws:
        blocks = rng.integers(0, NUM_BLOCK_CHOICES, (1024, NUM_BLOCKS))
        channels = rng.integers(0, NUM_CHANNEL_CHOICES, (1024, NUM_BLOCKS))
        drawn += 1024
        flops, _ = counter(blocks, channels)
        for i in np.flatnonzero((flops >= low) & (flops <= high)):
            key = (tuple(int(v) for v in blocks[i]), tuple(int(v) for v in channels[i]))
            if key not in seen and key not in skip:
                seen.add(key)
                found.append(np.concatenate([blocks[i], channels[i]]))
    if len(found) < k:
        raise ValueError("only %d architectures lie within %.0f %% of %.1f MFLOPs; widen "
                         "--matched-tolerance or move --matched-flops"
                         % (len(found), 100 * tolerance, target))
    codes = np.array(found[:pool])
    picked = [0]
    distance = (codes != codes[0]).sum(axis=1)
    while len(picked) < k:
        nxt = int(np.argmax(distance))
        picked.append(nxt)
        distance = np.minimum(distance, (codes != codes[nxt]).sum(axis=1))
    return [Architecture(codes[i, :NUM_BLOCKS], codes[i, NUM_BLOCKS:]) for i in picked]

