"""Rank statistics: Kendall's tau-b, Spearman's rho, bootstrap intervals, score reliability,
the noise figures of a ground-truth table (seed-to-seed agreement, spread against noise), and
what a score adds beyond FLOPs (residuals on log FLOPs, partial tau, paired differences,
leave-one-out predictions).

Written with numpy (tau-b and average-rank rho, as scipy defines them; the tests compare with
scipy on fixed inputs).
"""
import math

import numpy as np

__all__ = ["kendall_tau", "spearman_rho", "bootstrap_ci", "bootstrap_rows", "rank_correlations",
           "score_reliability", "tau_null_sd", "spread_against_noise", "residuals",
           "partial_tau", "partial_tau_ci", "paired_tau_difference", "loo_predictions"]


def _kendall_rows(x, y):
    """Kendall's tau-b along the last axis (one value per row of 2-d inputs; NaN where a row
    is constant)."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    dx, dy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    both = (dx * dy).sum(axis=-1)
    pairs = np.count_nonzero(dx, axis=-1) * np.count_nonzero(dy, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs == 0, np.nan, both / np.sqrt(pairs))


def kendall_tau(x, y):
    """Kendall's tau-b of two equally long sequences (ties in either one allowed).

    ``(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))`` over all pairs, with
    ``n0 = n (n - 1) / 2``; NaN when one sequence is constant.
    """
    x, y = _pair(x, y, "kendall_tau")
    return float(_kendall_rows(x, y))


def _pair(x, y, name):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("%s needs two 1-d sequences of equal length" % name)
    return x, y


def _average_ranks(values):
    """Ranks 1..n along the last axis, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=float)
    below = (values[..., None, :] < values[..., :, None]).sum(axis=-1)
    equal = (values[..., None, :] == values[..., :, None]).sum(axis=-1)
    return below + 0.5 * (equal + 1)


def _spearman_rows(x, y):
    """Spearman's rho along the last axis (NaN where a row is constant)."""
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=-1) / denom, np.nan)


def spearman_rho(x, y):
    """Spearman's rho: Pearson correlation of the average ranks; NaN for a constant input."""
    x, y = _pair(x, y, "spearman_rho")
    return float(_spearman_rows(x, y))


def _residual_rows(y, covariate):
    """``y`` minus its least-squares line on ``covariate``, along the last axis (NaN where the
    line is undetermined: fewer than 3 values or a constant covariate)."""
    zc = covariate - covariate.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    szz = (zc * zc).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(szz > 0, (zc * yc).sum(axis=-1, keepdims=True) / szz, np.nan)
    out = yc - slope * zc
    return out if y.shape[-1] >= 3 else np.full(y.shape, np.nan)


def _partial_rows(x, y, covariate):
    return _kendall_rows(_residual_rows(x, covariate), _residual_rows(y, covariate))


def _difference_rows(score, reference, truth):
    return _kendall_rows(score, truth) - _kendall_rows(reference, truth)


_resample_cache = {}


def _resamples(n, num_resamples, seed):
    """The bootstrap's row indices, one resample per row: ``num_resamples`` draws of ``n``
    indices from ``default_rng(seed)`` (kept: every statistic of a table shares them)."""
    key = (int(n), int(num_resamples), int(seed))
    if key not in _resample_cache:
        rng = np.random.default_rng(seed)
        picks = np.array([rng.integers(0, n, n) for _ in range(int(num_resamples))],
                         dtype=np.int64).reshape(int(num_resamples), int(n))
        picks.setflags(write=False)
        if len(_resample_cache) > 64:
            _resample_cache.clear()
        _resample_cache[key] = picks
    return _resample_cache[key]


def bootstrap_ci(x, y, statistic, num_resamples=2000, level=0.95, seed=0):
    """Percentile-bootstrap interval of ``statistic(x, y)``, resampling pairs with replacement.

    Resamples where the statistic is undefined (NaN: all values tied) are dropped.

    Returns
    -------
    (low, high) : tuple of float
    """
    return bootstrap_rows((x, y), statistic, num_resamples, level, seed)


def bootstrap_rows(columns, statistic, num_resamples=2000, level=0.95, seed=0):
    """Percentile-bootstrap interval of ``statistic(*columns)``, resampling rows (the same
    indices in every column) with replacement; NaN resamples are dropped. The statistics of
    this module are evaluated on all resamples at once.

    Returns
    -------
    (low, high) : tuple of float
    """
    columns = [np.asarray(c, dtype=float) for c in columns]
    picks = _resamples(len(columns[0]), num_resamples, seed)
    rowwise = _ROWWISE.get(statistic)
    if rowwise is not None:
        values = rowwise(*[c[picks] for c in columns])
    else:
        values = np.array([statistic(*[c[pick] for c in columns]) for pick in picks])
    values = values[~np.isnan(values)]
    if not len(values):
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


def residuals(y, covariate):
    """``y`` minus its least-squares line on ``covariate`` (intercept and slope); NaN where the
    line is undetermined (fewer than 3 values, or a constant covariate)."""
    y, covariate = _pair(y, covariate, "residuals")
    return _residual_rows(y, covariate)


def partial_tau(x, y, covariate):
    """Kendall tau between the residuals of ``x`` and of ``y``, each after a least-squares line
    on ``covariate`` (log FLOPs): how far ``x`` orders ``y`` beyond what the covariate does."""
    x, y = _pair(x, y, "partial_tau")
    return float(_partial_rows(x, y, _pair(x, covariate, "partial_tau")[1]))


def partial_tau_ci(x, y, covariate, num_resamples=2000, level=0.95, seed=0):
    """:func:`partial_tau` with its bootstrap interval over rows (the lines refitted on every
    resample), as a JSON-able dict."""
    low, high = bootstrap_rows((x, y, covariate), partial_tau, num_resamples, level, seed)
    return {"value": partial_tau(x, y, covariate), "ci": [low, high], "level": level}


def paired_tau_difference(score, reference, truth, num_resamples=2000, level=0.95, seed=0):
    """``tau(score, truth) - tau(reference, truth)`` with a paired bootstrap interval (both
    taus on the same resampled rows): does ``score`` rank better than ``reference``?"""
    columns = [np.asarray(c, dtype=float) for c in (score, reference, truth)]
    low, high = bootstrap_rows(columns, _difference_rows, num_resamples, level, seed)
    return {"value": float(_difference_rows(*columns)), "ci": [low, high], "level": level}


def loo_predictions(features, y):
    """Leave-one-out least-squares predictions of ``y`` from ``features`` (columns; an
    intercept is added): row ``i`` predicted by the fit on all other rows.

    Uses the hat-matrix identity ``pred_i = (fit_i - h_ii y_i) / (1 - h_ii)``, exact for
    least squares.
    """
    y = np.asarray(y, dtype=float)
    design = np.column_stack([np.ones(len(y))] + [np.asarray(f, dtype=float) for f in features])
    if len(y) <= design.shape[1] + 1:
        raise ValueError("a leave-one-out fit of %d features needs more than %d rows, got %d"
                         % (design.shape[1] - 1, design.shape[1] + 1, len(y)))
    pinv = np.linalg.pinv(design)
    hat = np.einsum("ij,ji->i", design, pinv)
    fit = design @ (pinv @ y)
    return (fit - hat * y) / (1.0 - hat)


_ROWWISE = {kendall_tau: _kendall_rows, spearman_rho: _spearman_rows,
            partial_tau: _partial_rows, _difference_rows: _difference_rows}
