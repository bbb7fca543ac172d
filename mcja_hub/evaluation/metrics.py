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
                      dedup: bool | None = None, chunk_size: int = 64) -> dict:
    """CMC (fractions, length ``max_rank``), mAP and mINP of a query x gallery distance matrix.

    Ranking is by ascending distance, ties broken by gallery order (stable sort). Items the protocol
    discards are removed from each query's list first; queries with no remaining true match are
    skipped (``num_valid_queries`` counts the rest). AP averages k / (position of the k-th match) and
    INP is (number of matches) / (position of the last match), both on the full list; the CMC uses the
    identity-deduplicated list (each gallery identity counted at its first position) when ``dedup``
    (default: the protocol's reference behaviour, see DEFAULT_DEDUP).
    """
    return evaluate_subsets(distmat, q_pids, g_pids, q_cams, g_cams, [None], protocol, max_rank, dedup, chunk_size)[0]


def evaluate_subsets(distmat, q_pids, g_pids, q_cams, g_cams, subsets, protocol: str = "sysu", max_rank: int = 20,
                     dedup: bool | None = None, chunk_size: int = 64) -> list[dict]:
    """``evaluate_rankings`` for several galleries that are subsets of one pool, as the SYSU-MM01 and LLCM
    trials are (``subsets``: index arrays into the pool's columns, or None for the whole pool).

    Each query's ranking of the pool is sorted once; a subset's ranking is the pool ranking restricted
    to its members (ties keep pool order), so 10 or 40 trials cost one sort instead of 10 or 40.
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
    members = []
    for sub in subsets:
        m = torch.ones(n_g, dtype=torch.bool, device=device)
        if sub is not None:
            m = torch.zeros(n_g, dtype=torch.bool, device=device)
            m[_as_tensor(sub, device).long()] = True
            if int(m.sum()) != len(sub):
                raise ValueError("a gallery subset lists the same pool index twice")
        members.append(m)
    acc = [{"cmc": torch.zeros(max_rank, dtype=torch.float64, device=device), "ap": 0.0, "inp": 0.0, "n": 0}
           for _ in subsets]
    ranks = torch.arange(1, max_rank + 1, device=device)
    for start in range(0, n_q, chunk_size):
        sl = slice(start, start + chunk_size)
        pool_order = torch.argsort(dist[sl], dim=1, stable=True)
        discard = discard_mask(q_pids[sl], g_pids, q_cams[sl], g_cams, protocol)
        n_rows = len(pool_order)
        for member, a in zip(members, acc):
            size = int(member.sum())
            order = pool_order
            if size < n_g:
                # the subset's members in pool order, without boolean indexing: each member goes to slot
                # (number of members before it); non-members all go to a spare last column, dropped
                is_member = member.expand(n_rows, -1).gather(1, pool_order)
                slot = torch.where(is_member, is_member.cumsum(1) - 1, size)
                order = torch.empty(n_rows, size + 1, dtype=torch.long, device=device).scatter_(1, slot, pool_order)[:, :size]
            keep = ~discard.gather(1, order) if discard is not None else torch.ones_like(order, dtype=torch.bool)
            match = (g_pids.expand(n_rows, -1).gather(1, order) == q_pids[sl, None]) & keep
            n_match = match.sum(1)
            valid = n_match > 0  # queries without a true match do not count
            position = keep.cumsum(1, dtype=torch.int32)  # 1-based rank among the items that count
            hits = match.cumsum(1, dtype=torch.int32)
            precision = torch.where(match, hits / position.clamp(min=1), 0.0)  # only read at matches
            denom = n_match.clamp(min=1)
            a["ap"] += float((precision.sum(1, dtype=torch.float64) / denom)[valid].sum())
            last = torch.where(match, position, 0).amax(1).clamp(min=1)
            a["inp"] += float((n_match / last)[valid].sum(dtype=torch.float64))
            big = size + 1
            first_match = torch.where(match, position, big).amin(1)
            if dedup:
                # position of each identity's first appearance; the rank of the true identity in the
                # deduplicated list = 1 + the number of identities that appear before it
                first_seen = torch.full((n_rows, n_ident), big, dtype=torch.int32, device=device)
                first_seen.scatter_reduce_(1, g_ident.expand(n_rows, -1).gather(1, order),
                                           torch.where(keep, position, big), "amin")
                rank = (first_seen < first_match[:, None]).sum(1) + 1
            else:
                rank = first_match
            a["cmc"] += ((rank[:, None] <= ranks) & valid[:, None]).sum(0)
            a["n"] += int(valid.sum())
    results = []
    for a in acc:
        if a["n"] == 0:
            raise ValueError("no query has a true match in the gallery (after the protocol's discard rule)")
        results.append({"cmc": (a["cmc"] / a["n"]).cpu().numpy(), "mAP": a["ap"] / a["n"], "mINP": a["inp"] / a["n"],
                        "num_valid_queries": a["n"]})
    return results
