"""Search figures: fitness per generation and the FLOPs-vs-accuracy scatter with Pareto front."""
import json
import logging
import os

import numpy as np

from ..files import atomic_write_json
from ..plotting import label_axes, pyplot, save_figure

__all__ = ["plot_history", "plot_candidates", "pareto_front", "best_so_far", "compare_searches"]

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
    label_axes(ax, "generation", "fitness", title)
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
    label_axes(ax, "MFLOPs (224 px, 1000 classes)", "top-1 after BN recalibration (%)", title,
               loc="lower right")
    return save_figure(fig, path)


def best_so_far(fitness):
    """Running maximum: the best fitness after each evaluated candidate."""
    return np.maximum.accumulate(np.asarray(fitness, dtype=float))


def _load_search(path):
    try:
        with open(path) as f:
            res = json.load(f)
        fitness = [c["fitness"] for c in res["candidates"]]
        seed = res["config"].get("seed")
        # what the fitness measures (results written before --search-score: top-1)
        objective = (res["config"].get("search_target", "acc"),
                     res["config"].get("search_score", "acc"))
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError("%s is not a search_results.json with evaluated candidates" % path) \
            from None
    if not fitness:
        raise ValueError("%s holds no evaluated candidates" % path)
    return {"path": path, "fitness": fitness, "seed": seed, "objective": objective,
            "mode": res["config"].get("search_mode"), "split": res.get("split")}


def compare_searches(genetic_paths, random_paths, path):
    """Best fitness per evaluated candidate of genetic and random searches -> PNG + JSON.

    Candidates count in evaluation order (the order of ``candidates`` in each results file).
    Pairs (genetic i, random i) are compared at the smaller of their two candidate counts.

    Returns
    -------
    dict
        ``pairs`` (per pair: candidates, genetic_best, random_best, seeds), ``genetic_wins``,
        ``plot``, ``results_path``.
    """
    genetic = [_load_search(p) for p in genetic_paths]
    randoms = [_load_search(p) for p in random_paths]
    if len(genetic) != len(randoms):
        raise ValueError("give as many --random files as --genetic files (%d vs %d): they are "
                         "compared in pairs" % (len(randoms), len(genetic)))
    objectives = {s["objective"] for s in genetic + randoms}
    if len(objectives) > 1:
        first = genetic[0]
        other = next(s for s in genetic + randoms if s["objective"] != first["objective"])
        raise ValueError("%s maximised --search-target %s --search-score %s, %s --search-target "
                         "%s --search-score %s: their fitness values cannot be compared"
                         % (first["path"], first["objective"][0], first["objective"][1],
                            other["path"], other["objective"][0], other["objective"][1]))
    target, score = objectives.pop()
    quantity = "exp(-loss) x 100" if score == "loss" else "top-1 %"
    if target != "acc":
        quantity += ", %s" % target
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    pairs = []
    for i, (g, r) in enumerate(zip(genetic, randoms)):
        n = min(len(g["fitness"]), len(r["fitness"]))
        gb, rb = best_so_far(g["fitness"]), best_so_far(r["fitness"])
        ax.plot(np.arange(1, len(gb) + 1), 100 * gb, color="tab:red", alpha=0.8, lw=1.5,
                label="genetic" if i == 0 else None)
        ax.plot(np.arange(1, len(rb) + 1), 100 * rb, color="tab:blue", alpha=0.8, lw=1.5,
                ls="--", label="random" if i == 0 else None)
        pairs.append({"candidates": int(n), "genetic_best": float(gb[n - 1]),
                      "random_best": float(rb[n - 1]), "genetic_seed": g["seed"],
                      "random_seed": r["seed"], "genetic_path": g["path"],
                      "random_path": r["path"]})
    split = (genetic[0].get("split") or {}).get("name", "val")
    label_axes(ax, "evaluated candidates",
               "best fitness so far (%s, %s split)" % (quantity, "held-out"
                                                       if split == "holdout" else "validation"),
               "genetic vs random search, %d seed(s)" % len(pairs), loc="lower right")
    plot = save_figure(fig, path)
    wins = sum(p["genetic_best"] >= p["random_best"] for p in pairs)
    result = {"pairs": pairs, "genetic_wins": int(wins), "plot": plot,
              "search_target": target, "search_score": score}
    result["results_path"] = os.path.splitext(path)[0] + ".json"
    atomic_write_json(result["results_path"], result, indent=1)
    return result
