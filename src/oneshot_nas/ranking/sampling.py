"""Architectures spread over the FLOPs range a set of constraints admits."""
import numpy as np

from ..search.algorithms import sample_population
from ..search_space import NUM_CHANNEL_CHOICES, Architecture

__all__ = ["sample_spread", "flops_params"]


def flops_params(counter, arch):
    """``(MFLOPs, M params)`` of one architecture from a vectorised counter."""
    flops, params = counter(np.array([arch.blocks]), np.array([arch.channels]))
    return float(flops[0]), float(params[0])


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
    return sorted(picks, key=lambda a: flops_params(counter, a)[0])


