"""Shared helpers of the benchmark scripts (run as `python benchmarks/<name>.py`, so this is importable)."""

import time


def timed(fn, repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock times of ``fn()`` after one warm-up call."""
    return timed_pair(fn, None, repeats)[0]


def timed_pair(fn_a, fn_b, repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock times of ``fn_a()`` and ``fn_b()`` over ``repeats`` interleaved rounds, after one
    warm-up call each. Interleaving puts both under the same background load on a shared machine, so
    their ratio drifts less than that of two back-to-back timings."""
    fns = [f for f in (fn_a, fn_b) if f is not None]
    best = [float("inf")] * len(fns)
    for f in fns:
        f()
    for _ in range(repeats):
        for k, f in enumerate(fns):
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best[0], (best[1] if fn_b is not None else None)
