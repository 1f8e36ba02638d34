"""Rank statistics: Kendall's tau-b, Spearman's rho, bootstrap intervals, score reliability,
and the noise figures of a ground-truth table (seed-to-seed agreement, spread against noise).

Written with numpy (tau-b and average-rank rho, as scipy defines them; the tests compare with
scipy on fixed inputs).
"""
import math

import numpy as np

__all__ = ["kendall_tau", "spearman_rho", "bootstrap_ci", "rank_correlations",
           "score_reliability", "tau_null_sd", "spread_against_noise"]


def kendall_tau(x, y):
    """Kendall's tau-b of two equally long sequences (ties in either one allowed).

    ``(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`` over all pairs, with
    ``n0 = n (n - 1) / 2``; NaN when one sequence is constant.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("kendall_tau needs two 1-d sequences of equal length")
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    both = float((dx * dy).sum())
    pairs_x, pairs_y = float(np.count_nonzero(dx)), float(np.count_nonzero(dy))
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return both / math.sqrt(pairs_x * pairs_y)


def _average_ranks(values):
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for stop in range(1, len(values) + 1):
        if stop == len(values) or sorted_values[stop] != sorted_values[start]:
            ranks[order[start:stop]] = 0.5 * (start + stop - 1) + 1
            start = stop
    return ranks


def spearman_rho(x, y):
    """Spearman's rho: Pearson correlation of the average ranks; NaN for a constant input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman_rho needs two 1-d sequences of equal length")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def bootstrap_ci(x, y, statistic, num_resamples=2000, level=0.95, seed=0):
    """Percentile-bootstrap interval of ``statistic(x, y)``, resampling pairs with replacement.

    Resamples where the statistic is undefined (NaN: all values tied) are dropped.

    Returns
    -------
    (low, high) : tuple of float
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(num_resamples)):
        pick = rng.integers(0, len(x), len(x))
        value = statistic(x[pick], y[pick])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def rank_correlations(x, y, num_resamples=2000, level=0.95, seed=0):
    """Kendall's tau and Spearman's rho with bootstrap intervals, as a JSON-able dict."""
    out = {}
    for name, fn in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho)):
        low, high = bootstrap_ci(x, y, fn, num_resamples, level, seed)
        out[name] = {"value": fn(x, y), "ci": [low, high], "level": level}
    return out


def score_reliability(per_image):
    """Share of a score's variance over architectures that is not sampling noise.

    Parameters
    ----------
    per_image : array (K architectures, N images)
        Per-image values whose mean is the score (0/1 hits, or losses).

    Returns
    -------
    float
        ``1 - mean_k(var_k / N) / var(means)``: 1 = noise-free ranking signal, <= 0 = the
        architectures differ less than the score's own sampling noise.
    """
    per_image = np.asarray(per_image, dtype=float)
    means = per_image.mean(axis=1)
    between = means.var(ddof=1) if len(means) > 1 else 0.0
    noise = float((per_image.var(axis=1, ddof=1) / per_image.shape[1]).mean())
    if between <= 0:
        return float("-inf") if noise > 0 else float("nan")
    return float(1.0 - noise / between)




def tau_null_sd(k):
    """Standard deviation of Kendall's tau between two unrelated rankings of ``k`` items:
    ``sqrt(2 (2k + 5) / (9 k (k - 1)))`` (0.28 at k = 8, 0.13 at k = 30)."""
    k = int(k)
    if k < 2:
        return float("nan")
    return math.sqrt(2.0 * (2 * k + 5) / (9.0 * k * (k - 1)))


def spread_against_noise(per_seed):
    """How far apart the architectures are, measured in units of the training noise.

    Parameters
    ----------
    per_seed : list of sequences
        Per architecture, its per-seed results (architectures with one seed count for the
        spread, those with two or more also for the noise).

    Returns
    -------
    dict
        ``spread_sd``: standard deviation of the per-architecture means; ``seed_sd``: pooled
        standard deviation of one run around its architecture's mean (rows with >= 2 seeds);
        ``ratio``: spread_sd / seed_sd (NaN without a row with two seeds); ``range``: max - min
        of the means; ``rows_with_seeds``.
    """
    means = np.array([float(np.mean(v)) for v in per_seed])
    multi = [np.asarray(v, dtype=float) for v in per_seed if len(v) >= 2]
    if multi:
        squares = sum(float(((v - v.mean()) ** 2).sum()) for v in multi)
        dof = sum(len(v) - 1 for v in multi)
        seed_sd = math.sqrt(squares / dof)
    else:
        seed_sd = float("nan")
    spread = float(means.std(ddof=1)) if len(means) > 1 else float("nan")
    ratio = spread / seed_sd if seed_sd and not math.isnan(seed_sd) else float("nan")
    return {"spread_sd": spread, "seed_sd": seed_sd, "ratio": ratio,
            "range": float(means.max() - means.min()) if len(means) else float("nan"),
            "rows_with_seeds": len(multi)}
