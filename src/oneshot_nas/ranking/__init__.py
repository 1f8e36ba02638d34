"""Ranking evidence: does the supernet order architectures as stand-alone training does?

Sits above ``training/`` and ``search/`` (it trains stand-alone nets *and* scores supernets):

* :mod:`.stats`    Kendall tau, Spearman rho, bootstrap intervals, reliability, table noise
* :mod:`.protocol` the stand-alone protocol, its cache of finished runs, ``train_standalone``
* :mod:`.sampling` architectures spread over FLOPs under constraints
* :mod:`.table`    the stored ground-truth table (build, resume, audit, schema)
* :mod:`.check`    the ranking check: against a stored table, or training new architectures
* :mod:`.winner`   the searched winner against random architectures
"""
from .protocol import StandaloneCache, StandaloneProtocol, train_standalone
from .sampling import sample_spread
from .stats import (bootstrap_ci, kendall_tau, rank_correlations, score_reliability,
                    spearman_rho, spread_against_noise, tau_null_sd)
from .table import TableSpec, build_table, load_table, rebuild_rows
from .check import (BenchmarkCheckConfig, RankCheckConfig, run_benchmark_check,
                    run_rank_check)
from .winner import WinnerCheckConfig, run_winner_check

__all__ = ["StandaloneCache", "StandaloneProtocol", "train_standalone", "sample_spread",
           "bootstrap_ci", "kendall_tau", "rank_correlations", "score_reliability",
           "spearman_rho", "spread_against_noise", "tau_null_sd", "TableSpec", "build_table",
           "load_table", "rebuild_rows", "BenchmarkCheckConfig", "RankCheckConfig",
           "run_benchmark_check", "run_rank_check", "WinnerCheckConfig", "run_winner_check"]
