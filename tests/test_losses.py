"""CMR loss and soft rank against explicit references written here (PAV per row, loops per query)."""

import pytest
import torch
import torch.nn.functional as F

from mcja_hub.losses import (CMRLoss, closed_form_valid, cmr_loss, id_loss, isotonic_nonincreasing, soft_rank,
                             soft_rank_closed_form)


def pav_nonincreasing(y: list[float]) -> list[float]:
    """Pool-adjacent-violators for a non-increasing fit, the textbook way."""
    blocks = []  # [sum, count]
    for v in y:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out = []
    for s, c in blocks:
        out += [s / c] * c
    return out


def soft_rank_reference(row: list[float], eps: float) -> list[float]:
    """torchsort's forward, step by step: sort desc, subtract (n..1), isotonic fit, subtract, unsort."""
    n = len(row)
    z = [v / eps for v in row]
    order = sorted(range(n), key=lambda i: -z[i])
    s = [z[i] for i in order]
    v = pav_nonincreasing([s[i] - (n - i) for i in range(n)])
    out = [0.0] * n
    for pos, i in enumerate(order):
        out[i] = s[pos] - v[pos]
    return out


def cmr_reference(emb, pids, mods, eps):
    """docs/method.md §3.1 with loops over directions and queries, using the reference soft rank."""
    e = F.normalize(emb.double(), dim=1)
    direction_losses = []
    for a in sorted(set(mods.tolist())):
        q_idx = [i for i in range(len(mods)) if mods[i] == a]
        g_idx = [i for i in range(len(mods)) if mods[i] != a]
        G = len(g_idx)
        terms = []
        for q in q_idx:
            m = sum(int(pids[q] == pids[g]) for g in g_idx)
            if m == 0 or m == G:
                continue
            d = [float((1 - e[q] @ e[g]) / 2) for g in g_idx]
            ranks = soft_rank_reference(d, eps)
            terms += [abs(r - (1 if pids[q] == pids[g] else G)) for r, g in zip(ranks, g_idx)]
        if terms:
            direction_losses.append(sum(terms) / len(terms))
    return sum(direction_losses) / len(direction_losses) if direction_losses else 0.0


def random_batch(n, n_ids, seed, dim=16):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g)
    pids = torch.randint(0, n_ids, (n,), generator=g)
    mods = torch.randint(0, 2, (n,), generator=g)
    return emb, pids, mods


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 33])
@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5, 2.0])
def test_soft_rank_matches_pav_reference(n, eps):
    g = torch.Generator().manual_seed(n)
    values = torch.rand(5, n, generator=g, dtype=torch.float64) * 3
    values[0, : n // 2] = 0.7  # ties
    got = soft_rank(values, eps)
    ref = torch.tensor([soft_rank_reference(r.tolist(), eps) for r in values], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-9)


def test_isotonic_is_nonincreasing_and_optimal():
    y = torch.randn(20, 15, dtype=torch.float64)
    v = isotonic_nonincreasing(y)
    assert torch.all(v[:, 1:] <= v[:, :-1] + 1e-12)
    ref = torch.tensor([pav_nonincreasing(r.tolist()) for r in y], dtype=torch.float64)
    torch.testing.assert_close(v, ref, rtol=0, atol=1e-12)


def test_soft_rank_hard_limit_and_range():
    v = torch.tensor([[0.3, 0.1, 0.9, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(soft_rank(v, 1e-4), torch.tensor([[2.0, 1.0, 4.0, 3.0]], dtype=torch.float64))
    r = soft_rank(torch.rand(10, 9, dtype=torch.float64), 0.3)
    assert r.min() >= 1 - 1e-9 and r.max() <= 9 + 1e-9
    torch.testing.assert_close(r.sum(1), torch.full((10,), 45.0, dtype=torch.float64))  # permutahedron


@pytest.mark.parametrize("n,n_ids,seed", [(6, 2, 0), (12, 3, 1), (24, 4, 2), (40, 6, 3), (9, 9, 4)])
@pytest.mark.parametrize("eps", [0.05, 0.5, 1.5])
def test_cmr_exact_matches_reference(n, n_ids, seed, eps):
    emb, pids, mods = random_batch(n, n_ids, seed)
    got = cmr_loss(emb.double(), pids, mods, eps=eps, exact=True)
    assert got.dtype == torch.float32  # the loss is computed in fp32 by design
    ref = cmr_reference(emb, pids, mods, eps)
    assert abs(got.item() - ref) < 1e-6 * max(1.0, abs(ref)), (got.item(), ref)


def test_cmr_small_galleries_use_exact_path():
    # G = 2 or 3 < 4: the closed form is not valid in general; the default path must equal the reference.
    emb = torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [1.0, 1.0], [0.2, -1.0]])
    pids = torch.tensor([0, 0, 1, 1, 0])
    mods = torch.tensor([0, 1, 1, 0, 0])  # direction 0 -> 1 has G = 2, direction 1 -> 0 has G = 3
    for eps in (0.05, 0.5):
        assert abs(cmr_loss(emb, pids, mods, eps=eps).item() - cmr_reference(emb, pids, mods, eps)) < 1e-6


def test_closed_form_equals_exact_where_valid():
    for seed in range(10):
        emb, pids, mods = random_batch(64, 8, seed, dim=32)
        a = cmr_loss(emb, pids, mods, eps=0.5, exact=False)
        b = cmr_loss(emb, pids, mods, eps=0.5, exact=True)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    d = torch.rand(50, 4, dtype=torch.float64)  # distances in [0, 1], G = 4, eps = 0.5: always valid
    assert closed_form_valid(d, 0.5).all()
    torch.testing.assert_close(soft_rank_closed_form(d, 0.5), soft_rank(d, 0.5), rtol=0, atol=1e-12)
    assert not closed_form_valid(torch.tensor([[0.0, 1.0, 0.0]]), 0.5).any()  # G = 3, spread 1 > 0.75


def test_closed_form_matches_spec_per_query_formula():
    """docs/method.md §3.2: l_q = (G-1)/2 + 2 m (G-m) / (eps G^2) * (mean_pos d - mean_neg d) for one query."""
    G, m, eps = 10, 3, 0.5
    d = torch.rand(1, G, dtype=torch.float64)
    match = torch.zeros(1, G, dtype=torch.bool)
    match[0, :m] = True
    target = torch.where(match, 1.0, float(G)).double()
    loss = (soft_rank_closed_form(d, eps) - target).abs().mean()
    spec = (G - 1) / 2 + 2 * m * (G - m) / (eps * G ** 2) * (d[0, :m].mean() - d[0, m:].mean())
    torch.testing.assert_close(loss, spec)


def test_gradcheck_exact_soft_rank_and_loss():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: soft_rank(v, 0.1), (x,))
    assert torch.autograd.gradcheck(lambda v: soft_rank(v, 2.0), (x,))
    # the loss itself, in float64 all the way (fp32 would fail gradcheck's tolerance by design)
    emb, pids, mods = random_batch(8, 3, 1, dim=4)
    emb = emb.double().requires_grad_()

    def loss64(e):
        e = F.normalize(e, dim=1)
        dist = (1 - e @ e.T) / 2
        q, gmask = mods == 0, mods == 1
        d = dist[q][:, gmask]
        match = pids[q][:, None] == pids[gmask][None]
        keep = (match.sum(1) > 0) & (match.sum(1) < gmask.sum())
        target = torch.where(match[keep], 1.0, float(gmask.sum())).double()
        return (soft_rank(d[keep], 0.1) - target).abs().mean()

    assert torch.autograd.gradcheck(loss64, (emb,))


def test_gradient_of_default_path_matches_exact():
    emb, pids, mods = random_batch(32, 4, 7, dim=8)
    grads = []
    for exact in (False, True):
        e = emb.clone().requires_grad_()
        cmr_loss(e, pids, mods, exact=exact).backward()
        grads.append(e.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_invalid_queries_dropped_and_zero_when_none_valid():
    emb = torch.randn(4, 8, requires_grad=True)
    # single modality: no direction at all
    loss = cmr_loss(emb, torch.tensor([0, 0, 1, 1]), torch.zeros(4, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(emb.grad == 0)
    # every id in one modality only: no query has a cross-modal positive
    assert cmr_loss(emb, torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])).item() == 0.0
    # a gallery made of one identity only: no negatives
    assert cmr_loss(emb, torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 1, 1])).item() == 0.0
    # queries without positives are dropped, the rest counted
    emb2, pids, mods = torch.randn(6, 8), torch.tensor([0, 1, 5, 0, 1, 2]), torch.tensor([0, 0, 0, 1, 1, 1])
    ref = cmr_reference(emb2, pids, mods, 0.5)
    assert ref > 0 and abs(cmr_loss(emb2, pids, mods).item() - ref) < 1e-6


def test_fp32_under_autocast():
    emb, pids, mods = random_batch(16, 4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = cmr_loss(emb.bfloat16(), pids, mods)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, cmr_loss(emb.bfloat16().float(), pids, mods))


def test_module_wrappers_and_id_loss():
    emb, pids, mods = random_batch(16, 4, 3)
    assert torch.equal(CMRLoss(eps=0.5)(emb, pids, mods), cmr_loss(emb, pids, mods, eps=0.5))
    logits, labels = torch.randn(5, 7).bfloat16(), torch.tensor([0, 1, 2, 3, 6])
    assert id_loss(logits, labels).dtype == torch.float32
    torch.testing.assert_close(id_loss(logits, labels), F.cross_entropy(logits.float(), labels))
    smooth = id_loss(logits, labels, label_smoothing=0.1)
    assert not torch.allclose(smooth, id_loss(logits, labels))


def test_bad_shapes():
    with pytest.raises(ValueError, match="3 embeddings, 2 person_ids"):
        cmr_loss(torch.randn(3, 4), torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="soft_rank expects"):
        soft_rank(torch.rand(5), 0.5)


def test_eps_must_be_positive():
    emb, pids, mods = random_batch(8, 2, 0)
    for eps in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="eps must be > 0"):
            cmr_loss(emb, pids, mods, eps=eps)


def test_cross_modal_rank1_against_a_loop():
    from mcja_hub.losses import cross_modal_rank1
    for seed in range(5):
        emb, pids, mods = random_batch(24, 4, seed)
        e = F.normalize(emb, dim=1)
        hits = queries = 0
        for i in range(24):
            others = [j for j in range(24) if mods[j] != mods[i]]
            if not any(pids[j] == pids[i] for j in others):
                continue
            queries += 1
            nearest = max(others, key=lambda j: float(e[i] @ e[j]))
            hits += int(pids[nearest] == pids[i])
        assert abs(cross_modal_rank1(emb, pids, mods).item() - hits / max(queries, 1)) < 1e-6
    emb, pids, mods = random_batch(8, 2, 0)
    assert cross_modal_rank1(emb, pids, torch.zeros(8, dtype=torch.long)).item() == 0.0  # one modality: no query
