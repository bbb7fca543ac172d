"""Shared helper of the benchmark scripts (run as `python benchmarks/<name>.py`, so this is importable)."""

import time


def timed(fn, repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock times of ``fn()`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
