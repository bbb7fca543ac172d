"""Memory-bounded re-ranking equals a dense, loop-by-loop transcription of the algorithm (docs/method.md §5.4)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcja_hub.evaluation.rerank import k_reciprocal_rerank, mser_rerank


def dense_reference(q_list, g_list, k1, k2, lam, mask_gallery):
    """The released algorithm step by step with N x N matrices, in float64."""
    multi_query = len(q_list) > 1
    q = np.concatenate(q_list) if multi_query else q_list[0]
    feats = np.concatenate([q] + ([g_list[0]] if multi_query else g_list)).astype(np.float64)
    n, n_q = len(feats), len(q)
    sq = (feats ** 2).sum(1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * feats @ feats.T, 0)
    original = dist / dist.max(axis=1, keepdims=True)
    ranked = dist.copy()
    if mask_gallery:
        ranked[:, n_q:] = np.inf
    initial_rank = np.argsort(ranked, axis=1, kind="stable")
    V = np.zeros((n, n))
    for i in range(n):
        fwd = initial_rank[i, : k1 + 1]
        recip = [j for j in fwd if i in initial_rank[j, : k1 + 1]]
        if recip:
            w = np.exp(-original[i, recip])
            V[i, recip] = w / w.sum()
    if k2 != 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(0) for i in range(n)])
    jaccard = np.zeros((n_q, n))
    for i in range(n_q):
        for j in range(n):
            s = np.minimum(V[i], V[j]).sum()
            jaccard[i, j] = 1 - s / (2 - s)
    final = (jaccard * (1 - lam) + original[:n_q] * lam)[:, n_q:]
    if multi_query:
        return final.reshape(len(q_list), n_q // len(q_list), -1).mean(0)
    return final.reshape(n_q, len(g_list), -1).mean(1)


def feats(n, d=16, seed=0, n_ids=6):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_ids, d, generator=g)
    x = centres[torch.arange(n) % n_ids] + 0.8 * torch.randn(n, d, generator=g)
    return F.normalize(x, dim=1)


@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("k1,k2,lam", [(6, 4, 0.3), (10, 1, 0.2), (5, 8, 0.5)])
def test_single_version_equals_dense(mask, k1, k2, lam):
    q, g = feats(18, seed=1), feats(30, seed=2)
    got = k_reciprocal_rerank(q, g, k1=k1, k2=k2, lambda_value=lam, mask_gallery=mask, block_size=7)
    ref = dense_reference([q.numpy()], [g.numpy()], k1, k2, lam, mask)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("side", ["gallery", "query"])
@pytest.mark.parametrize("mask", [True, False])
def test_mser_four_versions_equals_dense(side, mask):
    base_q, base_g = feats(15, seed=3), feats(24, seed=4)
    versions = lambda x, s: [x] + [F.normalize(x + 0.3 * feats(len(x), seed=s + k), dim=1) for k in range(3)]
    q_list, g_list = (versions(base_q, 10), [base_g]) if side == "query" else ([base_q], versions(base_g, 20))
    got = k_reciprocal_rerank(q_list, g_list, k1=8, k2=5, lambda_value=0.3, mask_gallery=mask, block_size=11)
    ref = dense_reference([t.numpy() for t in q_list], [t.numpy() for t in g_list], 8, 5, 0.3, mask)
    assert got.shape == (15, 24)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=2e-5)


def test_rerank_is_a_sensible_distance_on_clustered_features():
    both = feats(150, seed=5, n_ids=6)  # one set of identity centres for query and gallery
    q, g = both[:60], both[60:]
    ids_q, ids_g = torch.arange(60) % 6, torch.arange(60, 150) % 6
    acc = lambda d: (ids_g[d.argmin(1)] == ids_q).float().mean().item()
    base = acc(torch.cdist(q, g))
    for mask in (True, False):
        rr = k_reciprocal_rerank(q, g, k1=20, k2=6, lambda_value=0.3, mask_gallery=mask)
        assert acc(rr) >= base - 0.05 and acc(rr) > 0.5, (mask, acc(rr), base)
    assert torch.equal(mser_rerank([q], [g], dataset="regdb", k1=20, k2=6),
                       k_reciprocal_rerank(q, g, k1=20, k2=6, lambda_value=0.2, mask_gallery=False))


def test_errors():
    q, g = feats(10), feats(12)
    with pytest.raises(ValueError, match="only one side"):
        k_reciprocal_rerank([q, q], [g, g])
    with pytest.raises(ValueError, match="exceed the 10 possible neighbours"):
        k_reciprocal_rerank(q, g, k1=20, mask_gallery=True)
    with pytest.raises(ValueError, match="same number of images"):
        k_reciprocal_rerank([q, q[:5]], g)
    for bad in ({"k1": 0}, {"k2": -1}, {"lambda_value": 1.5}):
        with pytest.raises(ValueError, match="needs k1 >= 1, k2 >= 1 and 0 <= lambda_value <= 1"):
            k_reciprocal_rerank(q, g, **bad)
