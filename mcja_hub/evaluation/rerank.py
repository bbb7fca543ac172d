"""k-reciprocal re-ranking and MSER (Multi-Spectral Enhanced Ranking), memory-bounded (docs/method.md §5.4).

Same algorithm as the released code (Zhong et al. 2017 as adapted by MPANet / MCJA, without the
1/2-k1 expansion), computed without any N x N matrix: distances are made in row blocks, only each
row's top neighbours and the query x gallery block are kept, and the encoding V is dense only over
the columns that can be non-zero (with SYSU's gallery masking these are the queries). Everything is
fp32 (the released code keeps V and the Jaccard sums in fp16).
"""

from __future__ import annotations

import torch


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_(min=0)


def k_reciprocal_rerank(query: list[torch.Tensor] | torch.Tensor, gallery: list[torch.Tensor] | torch.Tensor,
                        k1: int = 20, k2: int = 6, lambda_value: float = 0.3, mask_gallery: bool = False,
                        block_size: int = 1024) -> torch.Tensor:
    """Re-ranked (Q, G) distances between query and gallery features.

    ``query`` / ``gallery``: one (n, d) tensor, or a list of versions of the same images (MSER: the
    original and the R, G, B views of the visible side); at most one side may have several. All rows
    of both sides form one neighbourhood graph; the result is averaged over the versions.
    ``mask_gallery``: gallery items never act as neighbours (the SYSU setting of the released code).
    """
    if not (k1 >= 1 and k2 >= 1 and 0 <= lambda_value <= 1):
        raise ValueError(f"k_reciprocal_rerank needs k1 >= 1, k2 >= 1 and 0 <= lambda_value <= 1, "
                         f"got k1={k1}, k2={k2}, lambda_value={lambda_value}")
    qs = list(query) if isinstance(query, (list, tuple)) else [query]
    gs = list(gallery) if isinstance(gallery, (list, tuple)) else [gallery]
    if len(qs) > 1 and len(gs) > 1:
        raise ValueError("only one side (query or gallery) may have several versions")
    n_q1, n_g1 = len(qs[0]), len(gs[0])
    if any(len(q) != n_q1 for q in qs) or any(len(g) != n_g1 for g in gs):
        raise ValueError("all versions of a side must have the same number of images")
    x = torch.cat(qs + gs).float()
    n, n_q = len(x), n_q1 * len(qs)  # rows [0, n_q) are queries
    depth = max(k1 + 1, k2)
    if depth > (n_q if mask_gallery else n):
        raise ValueError(f"k1 + 1 = {k1 + 1} / k2 = {k2} exceed the {n_q if mask_gallery else n} possible neighbours")

    # 1. row blocks of squared distances -> row max, top neighbours, the query x gallery block
    neighbours = torch.empty(n, depth, dtype=torch.long, device=x.device)
    neighbour_dist = torch.empty(n, depth, device=x.device)
    q_to_g = torch.empty(n_q, n - n_q, device=x.device)
    for s in range(0, n, block_size):
        d = _sqdist(x[s:s + block_size], x)
        d /= d.amax(1, keepdim=True).clamp(min=1e-12)  # each row divided by its max
        if s < n_q:
            q_to_g[s:min(s + block_size, n_q)] = d[: min(block_size, n_q - s), n_q:]
        if mask_gallery:
            d[:, n_q:] = float("inf")  # never chosen: depth <= n_q was checked above
        values, idx = torch.topk(d, depth, dim=1, largest=False, sorted=True)
        neighbours[s:s + len(d)] = idx
        neighbour_dist[s:s + len(d)] = values

    # 2. k-reciprocal sets and their Gaussian-of-distance encoding V (sparse: <= k1 + 1 per row)
    fwd = neighbours[:, : k1 + 1]
    rows = torch.arange(n, device=x.device)
    reciprocal = torch.empty_like(fwd, dtype=torch.bool)
    for s in range(0, n, block_size):
        reciprocal[s:s + block_size] = (fwd[fwd[s:s + block_size]] == rows[s:s + block_size, None, None]).any(-1)
    weight = torch.exp(-neighbour_dist[:, : k1 + 1]) * reciprocal
    weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-12)  # rows with no reciprocal stay 0

    # V dense over the columns that can be non-zero only
    cols, col_of = torch.unique(fwd[reciprocal], return_inverse=True)
    v = torch.zeros(n, len(cols), device=x.device)
    v[rows[:, None].expand_as(fwd)[reciprocal], col_of] = weight[reciprocal]

    # 3. local query expansion: V[i] <- mean of V over i's first k2 initial neighbours
    if k2 > 1:
        v_qe = torch.empty_like(v)
        for s in range(0, n, max(1, block_size // 4)):
            e = s + max(1, block_size // 4)
            v_qe[s:e] = v[neighbours[s:e, :k2]].mean(1)
        v = v_qe

    # 4. Jaccard distance of query rows to gallery rows: 1 - S / (2 - S), S = sum_c min(V_i, V_j)
    gallery_t = v[n_q:].T.contiguous()  # (C, G): a query's non-zero columns become contiguous rows
    v = v[:n_q].clone()  # the gallery rows are only needed transposed
    jaccard = torch.empty(n_q, n - n_q, device=x.device)
    for i in range(n_q):
        nz = v[i].nonzero()[:, 0]
        s = torch.minimum(gallery_t[nz], v[i, nz][:, None]).sum(0)
        jaccard[i] = 1 - s / (2 - s)
    del gallery_t, v
    final = jaccard.mul_(1 - lambda_value).add_(q_to_g, alpha=lambda_value)

    # 5. average over the versions of the multi-version side
    if len(qs) > 1:
        return final.view(len(qs), n_q1, n_g1).mean(0)
    return final.view(n_q1, len(gs), n_g1).mean(1)


def mser_rerank(query: list[torch.Tensor], gallery: list[torch.Tensor], dataset: str = "sysu_mm01",
                **overrides) -> torch.Tensor:
    """MSER with the released per-dataset constants, ``DATASETS[dataset].mser`` (``overrides`` may change
    k1, k2, lambda_value)."""
    from ..data.catalog import dataset as dataset_entry

    k1, k2, lam, mask = dataset_entry(dataset).mser
    params = dict(k1=k1, k2=k2, lambda_value=lam, mask_gallery=mask) | overrides
    return k_reciprocal_rerank(query, gallery, **params)
