"""Search figures: fitness per generation and the FLOPs-vs-accuracy scatter with Pareto front."""
import logging

import numpy as np

from ..plotting import pyplot, save_figure

__all__ = ["plot_history", "plot_candidates", "pareto_front"]

logger = logging.getLogger(__name__)



def pareto_front(flops, acc):
    """Indices of candidates not dominated in (lower FLOPs, higher accuracy), by FLOPs."""
    order = np.lexsort((-np.asarray(acc), np.asarray(flops)))
    front, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return front


def plot_history(history, path, title="genetic search"):
    """Best and mean fitness per generation -> PNG."""
    plt = pyplot()
    gens = [h["generation"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(gens, [h["best"] for h in history], "o-", label="best fitness")
    ax.plot(gens, [h["mean"] for h in history], "s--", label="mean fitness")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_candidates(records, path, max_flops=None, title="evaluated candidates"):
    """Every evaluated candidate as FLOPs vs top-1, the Pareto front marked -> PNG."""
    plt = pyplot()
    flops = np.array([r["flops"] for r in records])
    acc = np.array([r["top1"] for r in records]) * 100
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(flops, acc, s=12, alpha=0.5, label="candidates (%d)" % len(records))
    front = pareto_front(flops, acc)
    ax.plot(flops[front], acc[front], "r.-", label="Pareto front")
    if max_flops and np.isfinite(max_flops):
        ax.axvline(max_flops, color="k", ls=":", label="FLOPs limit")
    ax.set_xlabel("MFLOPs (224 px, 1000 classes)")
    ax.set_ylabel("top-1 after BN recalibration (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, path)
