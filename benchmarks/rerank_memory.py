"""Peak memory and time of MSER re-ranking at SYSU-MM01 multi-shot size (one trial).

3,803 infrared queries + 4 spectral versions x 3,010 visible gallery images (N = 15,843 rows),
2048-d unit features clustered around 96 identities. Reports the process's peak RSS increase over the
baseline after creating the features, and the size the released code's dense N x N float32/float16
matrices alone would take. Prints one JSON object.
"""

import json
import resource
import time

import torch
import torch.nn.functional as F

from mcja_hub.evaluation.rerank import mser_rerank

Q, G, D, IDS = 3803, 3010, 2048, 96


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(IDS, D, generator=g)

    def sample(n):
        return F.normalize(centres[torch.randint(0, IDS, (n,), generator=g)] + 1.5 * torch.randn(n, D, generator=g), dim=1)

    query = sample(Q)
    gallery = [sample(G) for _ in range(4)]
    base = peak_rss_mib()
    t = time.perf_counter()
    dist = mser_rerank([query], gallery, dataset="sysu_mm01")
    seconds = time.perf_counter() - t
    n = Q + 4 * G
    print(json.dumps({
        "benchmark": "rerank_memory", "rows": n, "queries": Q, "gallery": G, "versions": 4, "dim": D,
        "output": list(dist.shape), "seconds": round(seconds, 1),
        "peak_rss_increase_mib": round(peak_rss_mib() - base, 1),
        "dense_reference_nxn_mib": {"float32_dist": round(n * n * 4 / 2**20), "float16_V": round(n * n * 2 / 2**20)},
    }))


if __name__ == "__main__":
    main()
