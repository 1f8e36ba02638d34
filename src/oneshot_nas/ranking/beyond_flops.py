"""What a supernet's score says about stand-alone accuracy beyond what FLOPs say.

For the whole table, within the search's band and within the FLOPs-matched set:

* the score's Kendall tau and FLOPs-alone tau on the same rows;
* the **partial tau**: Kendall tau between the score's residual and the accuracy's residual,
  each after a least-squares line on log FLOPs (bootstrap interval over rows, lines refitted on
  every resample);
* the paired bootstrap interval of ``tau(score) - tau(FLOPs)``;
* a leave-one-out least-squares predictor of accuracy from ``[log FLOPs, score]``, its tau, and
  the paired interval of its tau minus the FLOPs-alone tau.
"""
import numpy as np

from .stats import (loo_predictions, paired_tau_difference, partial_tau_ci,
                    rank_correlations)

__all__ = ["beyond_flops", "subset_index", "SUBSETS"]

SUBSETS = (("all", "whole table"), ("band", "within the search's band"),
           ("matched", "within the FLOPs-matched set"))


def subset_index(rows, name):
    """Positions in ``rows`` of the subset ``name`` (one of :data:`SUBSETS`)."""
    if name == "all":
        return list(range(len(rows)))
    if name == "band":
        return [i for i, r in enumerate(rows) if r["in_band"]]
    return [i for i, r in enumerate(rows) if r.get("set") == "matched"]


def _figures(rows, bootstrap, seed):
    score = np.array([r["score"] for r in rows])
    truth = np.array([r["standalone_top1"] for r in rows])
    log_flops = np.log(np.array([r["flops"] for r in rows]))
    out = {"k": len(rows),
           "kendall_tau": rank_correlations(score, truth, bootstrap, seed=seed)["kendall_tau"],
           "flops_alone": rank_correlations(log_flops, truth, bootstrap,
                                            seed=seed)["kendall_tau"],
           "partial_tau": partial_tau_ci(score, truth, log_flops, bootstrap, seed=seed),
           "minus_flops": paired_tau_difference(score, log_flops, truth, bootstrap, seed=seed)}
    if len(rows) >= 6:
        predicted = loo_predictions([log_flops, score], truth)
        out["predictor"] = {
            "features": ["log FLOPs", "supernet score"],
            "kendall_tau": rank_correlations(predicted, truth, bootstrap,
                                             seed=seed)["kendall_tau"],
            "minus_flops": paired_tau_difference(predicted, log_flops, truth, bootstrap,
                                                 seed=seed)}
    return out


def beyond_flops(rows, bootstrap=2000, seed=0):
    """The figures above for every subset with at least 5 rows.

    Parameters
    ----------
    rows : list of dict
        ``score`` (higher is better), ``standalone_top1``, ``flops``, ``in_band`` and ``set``
        per architecture.

    Returns
    -------
    dict
        subset name -> figures (``k``, ``kendall_tau``, ``flops_alone``, ``partial_tau``,
        ``minus_flops``, ``predictor``), each a value with its interval.
    """
    out = {}
    for name, _ in SUBSETS:
        subset = [rows[i] for i in subset_index(rows, name)]
        if len(subset) >= 5:
            out[name] = _figures(subset, bootstrap, seed)
    return out
