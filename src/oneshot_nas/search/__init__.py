"""Subnet search in a trained supernet: evaluator, random / genetic search, latency table."""
from .algorithms import (COMPARISON_MODELS, SEARCH_SCORES, Constraints, Objective, SearchState,
                         genetic_search, random_search, sample_population)
from .evaluator import CandidateEvaluator
from .latency import LatencyTable
from .runner import SearchConfig, load_supernet, run_search

__all__ = ["COMPARISON_MODELS", "SEARCH_SCORES", "Constraints", "Objective", "SearchState",
           "genetic_search", "random_search", "sample_population", "CandidateEvaluator",
           "LatencyTable", "SearchConfig", "load_supernet", "run_search"]
