"""``python -m oneshot_nas.cli.compare_searches``: genetic vs random search, best fitness per
evaluated candidate, on one plot.

Give the ``search_results.json`` files of genetic and of random searches (one per seed, same
supernet and constraints). Candidates are counted in the order the searches evaluated them;
each method's best fitness is compared at the same number of evaluated candidates (the smaller
of the two counts of each seed pair, pairs taken in the order given). Writes a PNG and a JSON.
"""
import logging
import sys

from ..search.plots import compare_searches
from .common import command, new_parser, start

__all__ = ["build_parser", "main"]


def build_parser():
    p = new_parser("Best fitness per evaluated candidate: genetic vs random search.",
                   prog="python -m oneshot_nas.cli.compare_searches")
    p.add_argument("--genetic", nargs="+", required=True, help="search_results.json files")
    p.add_argument("--random", nargs="+", required=True, help="search_results.json files")
    p.add_argument("--output", default="search_comparison.png", help="PNG (JSON beside it)")
    return p


@command("compare_searches")
def main(argv=None):
    args = start(build_parser(), argv)
    res = compare_searches(args.genetic, args.random, args.output)
    print("%-6s %-10s %-28s %-28s" % ("pair", "candidates", "genetic best (seed)",
                                      "random best (seed)"))
    for i, pair in enumerate(res["pairs"]):
        print("%-6d %-10d %-28s %-28s" % (i, pair["candidates"],
                                          "%.4f (%s)" % (pair["genetic_best"],
                                                         pair["genetic_seed"]),
                                          "%.4f (%s)" % (pair["random_best"],
                                                         pair["random_seed"])))
    print("genetic >= random in %d of %d pairs" % (res["genetic_wins"], len(res["pairs"])))
    print("plot: %s\nresults: %s" % (res["plot"], res["results_path"]))
    logging.getLogger(__name__).info("wrote %s", res["results_path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
