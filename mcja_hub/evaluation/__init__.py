"""Evaluation: vectorised metrics, re-ranking, and ``evaluate(model, ...)`` over a dataset's test trials.

The trials themselves (which images are queries and gallery) are the data's: ``mcja_hub.data.trials``,
re-exported here for convenience.
"""

from ..data.trials import Protocol, Trial, llcm_trials, regdb_trials, sysu_settings, sysu_trials
from .evaluate import evaluate, format_table
from .metrics import discard_mask, evaluate_rankings, evaluate_subsets
from .rerank import k_reciprocal_rerank, mser_rerank

__all__ = ["Protocol", "Trial", "discard_mask", "evaluate", "evaluate_rankings", "evaluate_subsets", "format_table",
           "k_reciprocal_rerank", "llcm_trials", "mser_rerank", "regdb_trials", "sysu_settings", "sysu_trials"]
