"""How the ranking figures depend on the number of held-out images a supernet scores on.

A supernet score is a mean over held-out images, so part of its spread over architectures is
image sampling noise (its ``reliability``, :func:`~oneshot_nas.ranking.stats.score_reliability`,
is the share that is not). Scoring on more images removes only that part. Whether it would
help a ranking is measured here without scoring anything again: the per-image scores of a
finished check are subsampled to fewer images (the same images for every architecture, as one
scoring run with a smaller split would use), and tau and the partial tau given log FLOPs are
recomputed on each subsample. A figure that does not move between half and all of the images
will not move with twice as many either. The reliability of twice the images is projected with
the Spearman-Brown formula.
"""
import numpy as np

from .beyond_flops import SUBSETS, subset_index
from .stats import kendall_tau, partial_tau, score_reliability

__all__ = ["image_count_curve", "spearman_brown"]


def spearman_brown(reliability, factor):
    """Reliability of a mean over ``factor`` times as many images:
    ``factor r / (1 + (factor - 1) r)``."""
    return factor * reliability / (1.0 + (factor - 1.0) * reliability)


def _summary(values):
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def image_count_curve(rows, per_image, counts, draws=20, seed=0):
    """Tau, partial tau and reliability of a score computed on fewer of its images.

    Parameters
    ----------
    rows : list of dict
        The scored architectures: ``standalone_top1``, ``flops``, ``in_band`` and ``set``.
    per_image : array (K architectures, N images)
        The score per image, higher is better (held-out hits, or minus the losses); row i
        belongs to ``rows[i]``.
    counts : sequence of int
        Image counts to subsample to (each 2 <= n <= N; N itself is one draw: all images).
    draws : int
        Random subsets per count (the same subset for every architecture).
    seed : int
        Subset sampling.

    Returns
    -------
    list of dict
        Per count: ``images``, ``draws``, ``reliability`` and, per subset of rows (``all``,
        ``band``, ``matched``, those with at least 5 rows), ``kendall_tau`` and
        ``partial_tau``, each as ``{"mean", "sd"}`` over the draws.
    """
    per_image = np.asarray(per_image, dtype=float)
    if per_image.ndim != 2 or per_image.shape[0] != len(rows):
        raise ValueError("per-image scores of %d architectures expected, got shape %s"
                         % (len(rows), per_image.shape))
    total = per_image.shape[1]
    bad = [n for n in counts if not 2 <= int(n) <= total]
    if bad:
        raise ValueError("--image-counts %s: each must lie between 2 and the %d images scored"
                         % (", ".join(str(n) for n in bad), total))
    if int(draws) < 2:
        raise ValueError("--image-draws must be >= 2, got %s" % draws)
    rng = np.random.default_rng(seed)
    subsets = {}
    for name, _ in SUBSETS:
        index = subset_index(rows, name)
        if len(index) >= 5:
            subsets[name] = np.array(index)
    truth = np.array([r["standalone_top1"] for r in rows])
    log_flops = np.log(np.array([r["flops"] for r in rows], dtype=float))
    curve = []
    for n in sorted({int(n) for n in counts}):
        picks = [np.arange(total)] if n == total else \
            [rng.choice(total, size=n, replace=False) for _ in range(int(draws))]
        figures = {name: {"kendall_tau": [], "partial_tau": []} for name in subsets}
        reliability = []
        for pick in picks:
            values = per_image[:, pick]
            score = values.mean(axis=1)
            reliability.append(score_reliability(values))
            for name, index in subsets.items():
                figures[name]["kendall_tau"].append(kendall_tau(score[index], truth[index]))
                figures[name]["partial_tau"].append(
                    partial_tau(score[index], truth[index], log_flops[index]))
        entry = {"images": n, "draws": len(picks), "reliability": _summary(reliability)}
        for name, values in figures.items():
            entry[name] = {key: _summary(v) for key, v in values.items()}
        curve.append(entry)
    return curve
