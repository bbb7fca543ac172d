"""Vectorised CMC / mAP / mINP (docs/method.md §5).

Pure functions on ``(distmat, q_pids, g_pids, q_cams, g_cams)``: queries are processed in chunks on
whatever device ``distmat`` lives on, so memory stays bounded at any gallery size. ``protocol`` names
the dataset whose rules apply (which gallery items a query ignores, which CMC): ``data.DATASETS``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.catalog import dataset


def _as_tensor(x, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, device=device)


def _labels(x, name: str, device) -> torch.Tensor:
    """Person / camera ids as int64; fractional values are refused (a cast would make 1.2 and 1.7 equal)."""
    t = _as_tensor(x, device)
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must be integer ids, got fractional values such as {t[t != t.round()][0].item()}")
    elif t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must be integer ids, got {t.dtype}")
    return t.long()


def discard_mask(q_pids: torch.Tensor, g_pids: torch.Tensor, q_cams: torch.Tensor, g_cams: torch.Tensor,
                 protocol: str) -> torch.Tensor | None:
    """(Q, G) True where a gallery item does not count for that query under ``protocol``'s rule, or None
    if nothing is discarded. SYSU-MM01: same camera, cam3 counted as cam2 (the same room); RegDB:
    nothing; LLCM: same identity and camera."""
    rule = dataset(protocol).discard
    return None if rule is None else rule(q_pids, g_pids, q_cams, g_cams)


def evaluate_rankings(distmat, q_pids, g_pids, q_cams, g_cams, protocol: str = "sysu_mm01", max_rank: int = 20,
                      dedup: bool | None = None, chunk_size: int | None = None) -> dict:
    """CMC (fractions, length ``max_rank``), mAP and mINP of a query x gallery distance matrix.

    Ranking is by ascending distance, ties broken by gallery order (stable sort). Items the protocol
    discards are removed from each query's list first; queries with no remaining true match are
    skipped (``num_valid_queries`` counts the rest). AP averages k / (position of the k-th match) and
    INP is (number of matches) / (position of the last match), both on the full list; the CMC uses the
    identity-deduplicated list (each gallery identity counted at its first position) when ``dedup``
    (default: the dataset's reference behaviour, ``DATASETS[protocol].dedup_cmc``). Distances must be finite.
    """
    return evaluate_subsets(distmat, q_pids, g_pids, q_cams, g_cams, [None], protocol, max_rank, dedup, chunk_size)[0]


class _Lanes:
    """One small counter per trial packed into bit fields of int64 words, so that one ``scatter_add``
    counts for every trial at once. A lane is wide enough for ``limit``, so lanes never carry into each
    other; the sign bit stays unused."""

    def __init__(self, member: torch.Tensor, limit: int):
        n_t, device = len(member), member.device
        self.bits = max(int(limit).bit_length(), 1)
        per_word = 63 // self.bits
        t = torch.arange(n_t, device=device)
        self.word, self.shift = t // per_word, (t % per_word) * self.bits
        self.n_words = (n_t + per_word - 1) // per_word
        self.codes = self.pack(member.T)  # (words, pool): bit of each trial the pool item belongs to

    def pack(self, flags: torch.Tensor, full: bool = False) -> torch.Tensor:
        """(..., trials) bool -> (words, ...) int64 holding 1 (or all ones if ``full``) in the set lanes."""
        one = (1 << self.bits) - 1 if full else 1
        vals = (flags.long() * one) << self.shift
        out = torch.zeros(self.n_words, *flags.shape[:-1], dtype=torch.long, device=flags.device)
        return out.index_add_(0, self.word, vals.movedim(-1, 0))

    def unpack(self, words: torch.Tensor) -> torch.Tensor:
        """(words, ...) int64 -> (..., trials) int64 counters."""
        shift = self.shift.view(-1, *([1] * (words.dim() - 1)))
        return ((words[self.word] >> shift) & ((1 << self.bits) - 1)).movedim(0, -1)


def _buckets(d: torch.Tensor, match_d: torch.Tensor, match_col: torch.Tensor, n_match: torch.Tensor) -> torch.Tensor:
    """For every item of ``d`` (rows x pool): how many of the row's true matches rank before it, where
    ``match_d`` / ``match_col`` are the matches' distances and pool columns sorted by (distance, column)
    and ``n_match`` counts the real ones per row. Equal distances rank by pool column (stable sort).

    Same as ``searchsorted`` plus a tie rule, without its per-item binary search: items go to uniform bins of
    the row's distance range (monotone arithmetic, so a bin never holds values out of order with
    another bin); a table gives, per bin, the number of matches in lower bins, and only the few items
    that share a bin with a match are compared with those matches one by one.
    """
    rows, n_g = d.shape
    width = match_d.shape[1]
    n_bins = max(n_g, 64)
    lo, hi = d.aminmax(dim=1, keepdim=True)
    scale = torch.where(hi > lo, (n_bins - 1) / (hi - lo), 0.0)  # keeps every bin index <= n_bins - 1

    def bin_of(x):
        return ((x - lo) * scale).long()

    real = torch.arange(width, device=d.device) < n_match[:, None]
    match_bin = torch.where(real, bin_of(torch.where(real, match_d, lo)), n_bins)
    per_bin = torch.zeros(rows, n_bins + 1, dtype=torch.long, device=d.device).scatter_add_(1, match_bin, real.long())
    below = per_bin.cumsum(1) - per_bin  # matches in lower bins
    bins = bin_of(d)
    bucket = below.gather(1, bins)
    r, c = (per_bin > 0).gather(1, bins).nonzero(as_tuple=True)
    if len(r):  # items sharing a bin with a match: count the matches of that bin that rank before them
        b = bins[r, c]
        first, n_same = bucket[r, c], per_bin[r, b]
        j = torch.arange(int(n_same.max()), device=d.device)
        k = (first[:, None] + j).clamp(max=width - 1)
        x = d[r, c, None]
        same_d, same_col = match_d[r[:, None], k], match_col[r[:, None], k]
        ahead = (j < n_same[:, None]) & ((same_d < x) | ((same_d == x) & (same_col < c[:, None])))
        bucket[r, c] += ahead.sum(1)
    return bucket


def evaluate_subsets(distmat, q_pids, g_pids, q_cams, g_cams, subsets, protocol: str = "sysu_mm01", max_rank: int = 20,
                     dedup: bool | None = None, chunk_size: int | None = None) -> list[dict]:
    """``evaluate_rankings`` for several galleries that are subsets of one pool, as the SYSU-MM01 and LLCM
    trials are (``subsets``: index arrays into the pool's columns, or None for the whole pool); a
    subset ranks its members in pool order on equal distances.

    Nothing is sorted at pool size. Every metric depends only on where the *true matches* stand, so
    per query the pool's true matches are sorted (a few dozen values) and every pool item gets the
    bucket between two consecutive true matches (``_buckets``). One ``scatter_add`` of packed
    per-trial membership bits (``_Lanes``) then counts every trial's kept items per bucket, and a true
    match's position in a trial's list is that trial's running total up to its bucket: all trials of a
    setting cost a few passes over the query x pool distances instead of a sort each. The deduplicated
    CMC counts, per trial, the identities with a kept item before the trial's first true match: a second
    packed ``scatter_add`` over (query, identity) of the items that come before some trial's first match.
    """
    dist = _as_tensor(distmat, None)
    dist = dist.double() if not dist.is_floating_point() else dist.float() if dist.element_size() < 4 else dist
    device = dist.device
    q_pids, g_pids = _labels(q_pids, "q_pids", device), _labels(g_pids, "g_pids", device)
    q_cams, g_cams = _labels(q_cams, "q_cams", device), _labels(g_cams, "g_cams", device)
    n_q, n_g = dist.shape
    if (len(q_pids), len(q_cams), len(g_pids), len(g_cams)) != (n_q, n_q, n_g, n_g):
        raise ValueError(f"distmat is {n_q}x{n_g} but got {len(q_pids)} query pids, {len(q_cams)} query cams, "
                         f"{len(g_pids)} gallery pids, {len(g_cams)} gallery cams")
    protocol = dataset(protocol).name
    if dist.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(dist))).all()):  # NaN propagates
        raise ValueError(f"distmat has {int((~torch.isfinite(dist)).sum())} NaN or infinite values; "
                         "the ranking would be undefined")
    dedup = dataset(protocol).dedup_cmc if dedup is None else dedup
    if n_g == 0:
        raise ValueError("the gallery is empty")
    member = torch.ones(len(subsets), n_g, dtype=torch.bool, device=device)
    for t, sub in enumerate(subsets):
        if sub is not None:
            idx = _as_tensor(sub, device).long()
            if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n_g):
                raise ValueError(f"gallery subset {t} has pool indices outside 0..{n_g - 1}")
            member[t] = False
            member[t, idx] = True
            if int(member[t].sum()) != len(idx):
                raise ValueError(f"gallery subset {t} lists the same pool index twice")
    if len(subsets) > 1 and int(member.sum()) <= n_g:
        # small galleries (SYSU single-shot: 1 image per id and camera): cheaper to take their columns
        # than to go over the whole pool for each
        return [evaluate_subsets(dist.gather(1, c.expand(n_q, -1)), q_pids, g_pids[c], q_cams, g_cams[c], [None],
                                 protocol, max_rank, dedup, chunk_size)[0]
                for c in (m.nonzero()[:, 0] for m in member)]
    n_t = len(subsets)

    # gallery identities 0..U-1; each query's identity among them (-1: absent, no true match)
    idents, g_ident = torch.unique(g_pids, return_inverse=True)
    n_ident = len(idents)
    q_ident = torch.searchsorted(idents, q_pids).clamp(max=n_ident - 1)
    q_ident = torch.where(idents[q_ident] == q_pids, q_ident, -1)
    # the pool columns of each identity, ascending, padded to the largest identity (``in_group`` marks real ones)
    size = torch.bincount(g_ident, minlength=n_ident)
    width = int(size.max())
    by_ident = torch.argsort(g_ident, stable=True)
    slot = torch.arange(n_g, device=device) - torch.repeat_interleave(size.cumsum(0) - size, size)
    groups = torch.zeros(n_ident, width, dtype=torch.long, device=device)
    groups[g_ident[by_ident], slot] = by_ident
    in_group = torch.arange(width, device=device) < size[:, None]
    n_buckets = width + 2  # bucket width + 1: discarded items, after every true match
    count_lanes = _Lanes(member, n_g)  # items per bucket: up to the pool size
    ident_lanes = _Lanes(member, width)  # items per identity: up to the largest identity

    chunk_size = chunk_size or max(1, (1 << 19) // n_g)
    cmc = torch.zeros(n_t, max_rank, dtype=torch.float64, device=device)
    ap_sum = torch.zeros(n_t, dtype=torch.float64, device=device)
    inp_sum = torch.zeros(n_t, dtype=torch.float64, device=device)
    n_valid = torch.zeros(n_t, dtype=torch.long, device=device)
    match_slots = torch.arange(width, device=device)
    for start in range(0, n_q, chunk_size):
        sl = slice(start, start + chunk_size)
        d, qi = dist[sl].contiguous(), q_ident[sl]
        rows = len(d)
        discard = discard_mask(q_pids[sl], g_pids, q_cams[sl], g_cams, protocol)
        # each query's true matches (its identity's kept pool items) sorted by (distance, pool index)
        cols = groups[qi.clamp(min=0)]
        is_match = in_group[qi.clamp(min=0)] & (qi >= 0)[:, None]
        if discard is not None:
            is_match &= ~discard.gather(1, cols)
        match_d, perm = torch.sort(torch.where(is_match, d.gather(1, cols), torch.inf), dim=1, stable=True)
        match_col = cols.gather(1, perm)
        n_match = is_match.sum(1)
        # bucket of a pool item = number of true matches ranked before it (a true match's own bucket is
        # its index among them); discarded items go after every true match
        bucket = _buckets(d, match_d, match_col, n_match)
        if discard is not None:
            bucket.masked_fill_(discard, width + 1)

        # per trial (last dim): position of each true match among the kept items, and whether it is in the trial
        words = count_lanes.n_words
        per_bucket = torch.zeros(words, rows, n_buckets, dtype=torch.long, device=device)
        per_bucket.scatter_add_(2, bucket.expand(words, -1, -1), count_lanes.codes[:, None].expand(-1, rows, -1))
        position = count_lanes.unpack(per_bucket.cumsum(2))[:, :width]  # rows x matches x trials
        is_in = count_lanes.unpack(count_lanes.codes[:, match_col]).bool()
        is_in &= (match_slots < n_match[:, None])[:, :, None]  # padding slots are no true match
        hits = is_in.cumsum(1)
        n_in = hits[:, -1]
        valid = n_in > 0
        ap = torch.where(is_in, hits.double() / position.clamp(min=1), 0.0).sum(1) / n_in.clamp(min=1)
        inp = n_in.double() / torch.where(is_in, position, 0).amax(1).clamp(min=1)
        first = is_in.to(torch.uint8).argmax(1)  # each trial's first true match
        rank = position.gather(1, first[:, None, :])[:, 0]
        if dedup:
            # identities (but the query's own) with a kept item of the trial in a bucket <= the trial's first match
            reach = torch.where(valid, first, -1)
            r, c = (bucket <= reach.amax(1, keepdim=True)).nonzero(as_tuple=True)
            upto = ident_lanes.pack(torch.arange(n_buckets, device=device)[:, None] <= reach[:, None, :], full=True)
            items = ident_lanes.codes[:, c] & upto[:, r, bucket[r, c]]
            per_ident = torch.zeros(ident_lanes.n_words, rows * n_ident, dtype=torch.long, device=device)
            per_ident.index_add_(1, r * n_ident + g_ident[c], items)
            before = ident_lanes.unpack(per_ident).view(rows, n_ident, n_t) > 0
            own = (qi >= 0).nonzero()[:, 0]
            before[own, qi[own]] = False
            rank = before.sum(1) + 1
        ap_sum += torch.where(valid, ap, 0).sum(0)
        inp_sum += torch.where(valid, inp, 0).sum(0, dtype=torch.float64)
        cmc += ((rank[:, :, None] <= torch.arange(1, max_rank + 1, device=device)) & valid[:, :, None]).sum(0)
        n_valid += valid.sum(0)
    results = []
    for t in range(n_t):
        n = int(n_valid[t])
        if n == 0:
            raise ValueError("no query has a true match in the gallery (after the protocol's discard rule)")
        results.append({"cmc": (cmc[t] / n).cpu().numpy(), "mAP": float(ap_sum[t]) / n, "mINP": float(inp_sum[t]) / n,
                        "num_valid_queries": n})
    return results
