"""``python -m oneshot_nas.cli.rank_curve``: Kendall tau against supernet training steps.

Reads several ``rank_check.json`` files of ``rank_check --benchmark`` (one per supernet
checkpoint; the step count comes from the JSON the trainer writes beside each ``.params``) and
plots tau with its bootstrap interval against the steps, beside what ranking by FLOPs alone
gives and the table's seed-to-seed tau (the ceiling).
"""
import json
import os
import sys

from ..files import atomic_write_json
from ..plotting import pyplot, save_figure
from .common import command, new_parser, start

__all__ = ["build_parser", "main", "rank_curve"]


def _steps(results):
    params = results.get("config", {}).get("supernet_params")
    path = os.path.splitext(str(params))[0] + ".json"
    try:
        with open(path) as f:
            meta = json.load(f)
        return int(meta["num_update"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError("no step count for %s: %s (written by the trainer beside the .params) "
                         "is missing or has no num_update" % (params, path)) from None


def rank_curve(paths, output, steps=None):
    """Collect ``(steps, tau, interval, FLOPs baseline)`` from rank-check results and plot them.

    Returns
    -------
    dict
        ``points`` sorted by steps, ``plot`` and ``results_path``.
    """
    if steps is not None and len(steps) != len(paths):
        raise ValueError("--steps lists %d values for %d results" % (len(steps), len(paths)))
    points = []
    for i, path in enumerate(paths):
        try:
            with open(path) as f:
                res = json.load(f)
            tau = res["kendall_tau"]
        except (OSError, ValueError, KeyError) as err:
            raise ValueError("%s is not a rank_check.json (%s)" % (path, err)) from None
        points.append({"results": path, "steps": steps[i] if steps else _steps(res),
                       "k": res.get("k"),
                       "kendall_tau": tau, "spearman_rho": res["spearman_rho"],
                       "score": res.get("primary_score"),
                       "flops_baseline": res.get("baselines", {}).get("flops"),
                       "ceiling": res.get("ceiling"), "band": res.get("band")})
    points.sort(key=lambda p: p["steps"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    steps = [p["steps"] for p in points]
    values = [p["kendall_tau"]["value"] for p in points]
    low = [p["kendall_tau"]["value"] - p["kendall_tau"]["ci"][0] for p in points]
    high = [p["kendall_tau"]["ci"][1] - p["kendall_tau"]["value"] for p in points]
    ax.errorbar(steps, values, yerr=[low, high], marker="o", capsize=3,
                label="supernet (%s), 95 %% bootstrap" % points[-1]["score"])
    base = [p["flops_baseline"]["value"] if p["flops_baseline"] else float("nan")
            for p in points]
    ax.plot(steps, base, ls="--", color="tab:gray", label="ranking by FLOPs alone")
    if points[-1]["ceiling"]:
        ax.axhline(points[-1]["ceiling"]["value"], color="tab:green", ls=":",
                   label="table seed-to-seed tau (ceiling)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("supernet training steps")
    ax.set_ylabel("Kendall tau vs stand-alone test top-1")
    ax.set_title("ranking along supernet training (K = %s)" % points[-1]["k"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    out = {"points": points, "plot": save_figure(fig, output)}
    out["results_path"] = os.path.splitext(output)[0] + ".json"
    atomic_write_json(out["results_path"], out, indent=1)
    return out


def build_parser():
    p = new_parser("Kendall tau against supernet training steps.",
                   prog="python -m oneshot_nas.cli.rank_curve")
    p.add_argument("results", nargs="+", help="rank_check.json files (rank_check --benchmark)")
    p.add_argument("--output", default="rank_curve.png", help="PNG (and JSON beside it)")
    p.add_argument("--steps", default=None,
                   help="comma-separated step counts in the order of the results (default: "
                        "num_update from the JSON beside each supernet's .params)")
    return p


@command("rank_curve")
def main(argv=None):
    args = start(build_parser(), argv)
    steps = None
    if args.steps:
        try:
            steps = [int(v) for v in args.steps.split(",")]
        except ValueError:
            raise ValueError("--steps must be comma-separated integers, got %r"
                             % args.steps) from None
    out = rank_curve(args.results, args.output, steps)
    for p in out["points"]:
        tau = p["kendall_tau"]
        print("%6d steps: Kendall tau %.3f [%.3f, %.3f]%s" % (
            p["steps"], tau["value"], tau["ci"][0], tau["ci"][1],
            "  (FLOPs alone %.3f)" % p["flops_baseline"]["value"] if p["flops_baseline"] else ""))
    print("plot: %s" % out["plot"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
