"""Shared helpers of the benchmark scripts (run as `python benchmarks/<name>.py`, so this is importable)."""

import time


def timed(fn, repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock times of ``fn()`` after one warm-up call."""
    return timed_interleaved(fn, repeats=repeats)[0]


def timed_interleaved(*fns, repeats: int = 3) -> list[float]:
    """Best wall-clock time of each ``fn()`` over ``repeats`` interleaved rounds, after one warm-up call
    each. Interleaving puts all of them under the same background load on a shared machine, so their
    ratios drift less than those of back-to-back timings."""
    best = [float("inf")] * len(fns)
    for f in fns:
        f()
    for _ in range(repeats):
        for k, f in enumerate(fns):
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best
