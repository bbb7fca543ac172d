"""SYSU-MM01 all-search single- and multi-shot, 10 trials each, at real size: vectorised vs per-query loop.

As in the real protocol: 3,803 infrared queries of 96 identities (cams 3 / 6) and a pool of visible
test images (96 ids x cams 1, 2, 4, 5, ~22 images per id and camera, ~6.7k images); trial t's gallery
takes 1 (single-shot, ~300) or 10 (multi-shot, ~3,000) images per id and camera. Random unit 2048-d
features. The package path (what ``evaluate`` does) computes the query x pool distances once and
``evaluate_subsets`` evaluates all 10 trials of a setting together (best of 3 runs); the baseline is the straightforward
per-query loop of the reference evaluation code (per trial: distances, sort, drop same-camera items,
stable-unique ids, AP, INP). Results are checked to agree. Prints one JSON object.
"""

import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from mcja_hub.evaluation import evaluate_subsets
from common import timed

Q, IDS, D, TRIALS = 3803, 96, 2048, 10


def loop_reference(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20):
    q_cams = np.where(q_cams == 3, 2, q_cams)
    cmc, aps, inps = np.zeros(max_rank), [], []
    for i in range(len(q_pids)):
        order = np.argsort(dist[i], kind="stable")
        result = [p for p, c in zip(g_pids[order], g_cams[order]) if c != q_cams[i]]
        match = np.array(result) == q_pids[i]
        if not match.any():
            continue
        positions = np.flatnonzero(match) + 1
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
        inps.append(len(positions) / positions[-1])
        unique = list(dict.fromkeys(result))
        rank = unique.index(q_pids[i]) + 1
        cmc[rank - 1:] += 1
    return cmc[:max_rank] / len(aps), float(np.mean(aps)), float(np.mean(inps))


def main():
    rng = np.random.default_rng(0)
    q_pids, q_cams = rng.integers(0, IDS, Q), rng.choice([3, 6], Q)
    pairs = [(p, c) for p in range(IDS) for c in (1, 2, 4, 5) if rng.random() < 0.8]  # not every id in every cam
    sizes = rng.integers(10, 35, len(pairs))
    pool_pids = np.repeat([p for p, _ in pairs], sizes)
    pool_cams = np.repeat([c for _, c in pairs], sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    settings = {shots: [np.sort(np.concatenate([s + rng.permutation(n)[:shots] for s, n in zip(starts, sizes)]))
                        for _ in range(TRIALS)] for shots in (1, 10)}
    qf = F.normalize(torch.randn(Q, D, generator=torch.Generator().manual_seed(1)), dim=1)
    pool = F.normalize(torch.randn(len(pool_pids), D, generator=torch.Generator().manual_seed(2)), dim=1)

    def package():
        dist = -(qf @ pool.T)
        return [r for subsets in settings.values()
                for r in evaluate_subsets(dist, q_pids, pool_pids, q_cams, pool_cams, subsets, "sysu_mm01")]

    def loop():
        return [loop_reference((-(qf @ pool[g].T)).numpy(), q_pids, pool_pids[g], q_cams, pool_cams[g])
                for subsets in settings.values() for g in subsets]

    t_fast = timed(package)
    fast = package()
    t = time.perf_counter()
    slow = loop()
    t_loop = time.perf_counter() - t
    max_diff = max(max(np.abs(a["cmc"] - b[0]).max(), abs(a["mAP"] - b[1]), abs(a["mINP"] - b[2])) for a, b in zip(fast, slow))
    assert max_diff < 1e-6, max_diff
    print(json.dumps({
        "benchmark": "evaluation", "queries": Q, "pool": len(pool_pids),
        "gallery_sizes": {f"{k}-shot": int(np.mean([len(g) for g in v])) for k, v in settings.items()},
        "evaluations": sum(len(v) for v in settings.values()), "package_s": round(t_fast, 2),
        "per_query_loop_s": round(t_loop, 2), "ratio": round(t_loop / t_fast, 1), "max_abs_difference": max_diff,
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
