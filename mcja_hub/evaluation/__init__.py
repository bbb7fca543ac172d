"""Evaluation: vectorised metrics, the benchmark protocols, re-ranking, and ``evaluate(model, ...)``."""

from .evaluate import evaluate, format_table
from .metrics import PROTOCOLS, discard_mask, evaluate_rankings, evaluate_subsets
from .protocols import Protocol, Trial, llcm_trials, regdb_trials, sysu_settings, sysu_trials
from .rerank import k_reciprocal_rerank, mser_rerank

__all__ = ["PROTOCOLS", "Protocol", "Trial", "discard_mask", "evaluate", "evaluate_rankings", "evaluate_subsets", "format_table",
           "k_reciprocal_rerank", "llcm_trials", "mser_rerank", "regdb_trials", "sysu_settings", "sysu_trials"]
