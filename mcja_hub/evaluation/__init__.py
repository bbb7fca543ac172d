"""Evaluation: vectorised metrics, the benchmark protocols, re-ranking, and ``evaluate(model, ...)``."""

from .metrics import PROTOCOLS, discard_mask, evaluate_rankings

__all__ = ["PROTOCOLS", "discard_mask", "evaluate_rankings"]
