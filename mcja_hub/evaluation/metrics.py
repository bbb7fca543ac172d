"""Vectorised CMC / mAP / mINP with the SYSU-MM01, RegDB and LLCM discard rules (SPEC §5, §12).

Pure functions on ``(distmat, q_pids, g_pids, q_cams, g_cams)``: queries are processed in chunks on
whatever device ``distmat`` lives on, so memory stays bounded at any gallery size.
"""

from __future__ import annotations

import numpy as np
import torch

PROTOCOLS = ("sysu", "regdb", "llcm")
# Identity-deduplicated CMC by default where the reference code uses it: the official SYSU protocol
# and the released MCJA code (also for RegDB); LLCM's reference code uses the plain CMC.
DEFAULT_DEDUP = {"sysu": True, "regdb": True, "llcm": False}


def _as_tensor(x, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, device=device)


def discard_mask(q_pids: torch.Tensor, g_pids: torch.Tensor, q_cams: torch.Tensor, g_cams: torch.Tensor,
                 protocol: str) -> torch.Tensor | None:
    """(Q, G) True where a gallery item does not count for that query, or None if nothing is discarded.

    sysu: same camera as the query, with camera 3 (indoor IR) treated as camera 2 (same room), so
    cam-3 queries ignore cam-2 gallery images. regdb: nothing. llcm: same identity *and* camera.
    """
    if protocol == "sysu":
        q = torch.where(q_cams == 3, torch.full_like(q_cams, 2), q_cams)
        return q[:, None] == g_cams[None, :]
    if protocol == "llcm":
        return (q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] == g_cams[None, :])
    if protocol == "regdb":
        return None
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def evaluate_rankings(distmat, q_pids, g_pids, q_cams, g_cams, protocol: str = "sysu", max_rank: int = 20,
                      dedup: bool | None = None, chunk_size: int = 512) -> dict:
    """CMC (fractions, length ``max_rank``), mAP and mINP of a query x gallery distance matrix.

    Ranking is by ascending distance, ties broken by gallery order (stable sort). Items the protocol
    discards are removed from each query's list first; queries with no remaining true match are
    skipped (``num_valid_queries`` counts the rest). AP averages k / (position of the k-th match) and
    INP is (number of matches) / (position of the last match), both on the full list; the CMC uses the
    identity-deduplicated list (each gallery identity counted at its first position) when ``dedup``
    (default: the protocol's reference behaviour, see DEFAULT_DEDUP).
    """
    dist = _as_tensor(distmat, None)
    device = dist.device
    q_pids, g_pids = _as_tensor(q_pids, device).long(), _as_tensor(g_pids, device).long()
    q_cams, g_cams = _as_tensor(q_cams, device).long(), _as_tensor(g_cams, device).long()
    n_q, n_g = dist.shape
    if (len(q_pids), len(q_cams), len(g_pids), len(g_cams)) != (n_q, n_q, n_g, n_g):
        raise ValueError(f"distmat is {n_q}x{n_g} but got {len(q_pids)} query pids, {len(q_cams)} query cams, "
                         f"{len(g_pids)} gallery pids, {len(g_cams)} gallery cams")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    dedup = DEFAULT_DEDUP[protocol] if dedup is None else dedup
    _, g_ident = torch.unique(g_pids, return_inverse=True)  # gallery identities as 0..U-1
    n_ident = int(g_ident.max()) + 1 if n_g else 0

    cmc_hits = torch.zeros(max_rank, dtype=torch.float64, device=device)
    ap_sum = inp_sum = 0.0
    valid_queries = 0
    for start in range(0, n_q, chunk_size):
        sl = slice(start, start + chunk_size)
        order = torch.argsort(dist[sl], dim=1, stable=True)
        keep = torch.ones_like(order, dtype=torch.bool)
        discard = discard_mask(q_pids[sl], g_pids, q_cams[sl], g_cams, protocol)
        if discard is not None:
            keep = ~discard.gather(1, order)
        match = (g_pids[order] == q_pids[sl, None]) & keep
        n_match = match.sum(1)
        ok = n_match > 0
        if not ok.any():
            continue
        order, keep, match, n_match = order[ok], keep[ok], match[ok], n_match[ok].double()
        position = keep.cumsum(1).double()  # 1-based rank among the items that count
        hits = match.cumsum(1).double()
        precision = torch.where(match, hits / position.clamp(min=1), 0.0)  # only read at matches
        ap_sum += float(precision.sum(1).div(n_match).sum())
        inp_sum += float((n_match / (position * match).amax(1)).sum())
        big = float(n_g + 1)
        first_match = torch.where(match, position, big).amin(1)
        if dedup:
            # position of each identity's first appearance; the rank of the true identity in the
            # deduplicated list = 1 + the number of identities that appear before it
            first_seen = torch.full((len(order), n_ident), big, dtype=torch.float64, device=device)
            first_seen.scatter_reduce_(1, g_ident[order], torch.where(keep, position, big), "amin")
            rank = (first_seen < first_match[:, None]).sum(1) + 1
        else:
            rank = first_match
        cmc_hits += (rank[:, None] <= torch.arange(1, max_rank + 1, device=device)).double().sum(0)
        valid_queries += int(ok.sum())
    if valid_queries == 0:
        raise ValueError("no query has a true match in the gallery (after the protocol's discard rule)")
    return {
        "cmc": (cmc_hits / valid_queries).cpu().numpy(),
        "mAP": ap_sum / valid_queries,
        "mINP": inp_sum / valid_queries,
        "num_valid_queries": valid_queries,
    }
