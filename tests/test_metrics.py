"""evaluate_rankings against a per-query loop written the way the reference evaluation code does it."""

import numpy as np
import pytest
import torch

from mcja_hub.evaluation import evaluate_rankings


def reference(distmat, q_pids, g_pids, q_cams, g_cams, protocol, dedup, max_rank=20):
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        pids, cams = g_pids[order], g_cams[order]
        if protocol == "sysu_mm01":
            qc = 2 if q_cams[i] == 3 else q_cams[i]
            keep = cams != qc
        elif protocol == "llcm":
            keep = ~((pids == q_pids[i]) & (cams == q_cams[i]))
        else:
            keep = np.ones(len(pids), bool)
        result = [p for p, k in zip(pids, keep) if k]
        match = [p == q_pids[i] for p in result]
        if not any(match):
            continue
        positions = [n + 1 for n, m in enumerate(match) if m]
        aps.append(np.mean([(k + 1) / pos for k, pos in enumerate(positions)]))
        inps.append(len(positions) / positions[-1])
        if dedup:
            unique = []
            for p in result:
                if p not in unique:
                    unique.append(p)
            rank = unique.index(q_pids[i]) + 1
        else:
            rank = positions[0]
        cmc[rank - 1:] += rank <= max_rank
    n = len(aps)
    return cmc / n, float(np.mean(aps)), float(np.mean(inps)), n


def random_problem(seed, n_q=60, n_g=80, n_ids=12, cams=(1, 2, 3, 4, 5, 6), tie_levels=None):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, n_ids + 3, n_q)  # some query ids are absent from the gallery
    g_pids = rng.integers(0, n_ids, n_g)
    q_cams = rng.choice(cams, n_q)
    g_cams = rng.choice(cams, n_g)
    dist = rng.random((n_q, n_g))
    if tie_levels:
        dist = np.round(dist * tie_levels) / tie_levels  # many exact ties
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("protocol", ["sysu_mm01", "regdb", "llcm"])
@pytest.mark.parametrize("dedup", [True, False])
@pytest.mark.parametrize("seed,ties", [(0, None), (1, 5), (2, 3), (3, None)])
def test_matches_reference_loop(protocol, dedup, seed, ties):
    dist, qp, gp, qc, gc = random_problem(seed, tie_levels=ties)
    got = evaluate_rankings(dist, qp, gp, qc, gc, protocol=protocol, dedup=dedup, chunk_size=7)
    cmc, mAP, mINP, n = reference(dist, qp, gp, qc, gc, protocol, dedup)
    assert got["num_valid_queries"] == n
    np.testing.assert_allclose(got["cmc"], cmc, rtol=0, atol=1e-6)
    assert abs(got["mAP"] - mAP) < 1e-6 and abs(got["mINP"] - mINP) < 1e-6


def test_sysu_camera_rule_cam3_queries_ignore_cam2():
    # the only true match of the cam-3 query is in cam 2: it must not count; for the cam-6 query it does
    dist = np.array([[0.1, 0.5, 0.9], [0.1, 0.5, 0.9]])
    q_pids, g_pids = np.array([7, 7]), np.array([7, 8, 7])
    g_cams = np.array([2, 1, 4])
    r3 = evaluate_rankings(dist[:1], q_pids[:1], g_pids, np.array([3]), g_cams, "sysu_mm01")
    assert r3["cmc"][0] == 0.0 and r3["cmc"][1] == 1.0  # list is [8 (cam1), 7 (cam4)]
    assert r3["mAP"] == pytest.approx(0.5)
    r6 = evaluate_rankings(dist[1:], q_pids[1:], g_pids, np.array([6]), g_cams, "sysu_mm01")
    assert r6["cmc"][0] == 1.0 and r6["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert r6["mINP"] == pytest.approx(2 / 3)


def test_dedup_changes_cmc_not_map():
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    q_pids, g_pids = np.array([1]), np.array([2, 2, 2, 1])
    cams = np.array([1]), np.array([2, 2, 2, 2])
    plain = evaluate_rankings(dist, q_pids, g_pids, *cams, protocol="regdb", dedup=False)
    dd = evaluate_rankings(dist, q_pids, g_pids, *cams, protocol="regdb", dedup=True)
    assert plain["cmc"][:4].tolist() == [0, 0, 0, 1] and dd["cmc"][:2].tolist() == [0, 1]
    assert plain["mAP"] == dd["mAP"] == pytest.approx(0.25)


def test_torch_input_and_device_agnostic():
    dist, qp, gp, qc, gc = random_problem(5)
    a = evaluate_rankings(torch.tensor(dist), torch.tensor(qp), torch.tensor(gp), torch.tensor(qc), torch.tensor(gc))
    b = evaluate_rankings(dist, qp, gp, qc, gc)
    np.testing.assert_array_equal(a["cmc"], b["cmc"])
    assert a["mAP"] == b["mAP"]


def test_errors():
    dist, qp, gp, qc, gc = random_problem(0)
    with pytest.raises(ValueError, match="unknown dataset 'market'"):
        evaluate_rankings(dist, qp, gp, qc, gc, protocol="market")
    with pytest.raises(ValueError, match="distmat is 60x80 but got 59 query pids"):
        evaluate_rankings(dist, qp[:-1], gp, qc, gc)
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rankings(dist, qp + 100, gp, qc, gc)
    with pytest.raises(ValueError, match="q_pids must be integer ids, got fractional values such as 1.2"):
        evaluate_rankings(dist[:2, :2], np.array([1.2, 3.0]), np.array([1.7, 3.0]), qc[:2], gc[:2])
    # integral floats are ids as they are
    a = evaluate_rankings(dist, qp.astype(float), gp.astype(float), qc, gc)
    assert a["mAP"] == evaluate_rankings(dist, qp, gp, qc, gc)["mAP"]


@pytest.mark.parametrize("protocol", ["sysu_mm01", "llcm"])
@pytest.mark.parametrize("sizes", [(10, 40, 119, None), (3, 20, 30, 50)])  # the whole pool / small galleries
def test_subsets_equal_reference_loop_on_their_columns(protocol, sizes):
    from mcja_hub.evaluation import evaluate_subsets
    dist, qp, gp, qc, gc = random_problem(7, n_g=120, tie_levels=4)
    rng = np.random.default_rng(1)
    subsets = [None if s is None else rng.choice(120, s, replace=False) for s in sizes]  # unsorted on purpose
    got = evaluate_subsets(dist, qp, gp, qc, gc, subsets, protocol=protocol, chunk_size=13)
    for sub, r in zip(subsets, got):
        cols = np.arange(120) if sub is None else np.sort(sub)  # equal distances rank in pool order
        cmc, mAP, mINP, n = reference(dist[:, cols], qp, gp[cols], qc, gc[cols], protocol, protocol == "sysu_mm01")
        assert r["num_valid_queries"] == n
        np.testing.assert_allclose(r["cmc"], cmc, rtol=0, atol=1e-12)
        assert r["mAP"] == pytest.approx(mAP, abs=1e-12) and r["mINP"] == pytest.approx(mINP, abs=1e-12)


def test_subset_errors():
    from mcja_hub.evaluation import evaluate_subsets
    dist, qp, gp, qc, gc = random_problem(7)
    with pytest.raises(ValueError, match="subset 1 lists the same pool index twice"):
        evaluate_subsets(dist, qp, gp, qc, gc, [None, np.array([1, 1, 2])])
    with pytest.raises(ValueError, match="subset 0 has pool indices outside 0..79"):
        evaluate_subsets(dist, qp, gp, qc, gc, [np.array([1, 80])])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_distances_are_refused(bad):
    dist, qp, gp, qc, gc = random_problem(0)
    dist[3, 5] = bad
    with pytest.raises(ValueError, match="distmat has 1 NaN or infinite values"):
        evaluate_rankings(dist, qp, gp, qc, gc)


@pytest.mark.parametrize("case", ["random", "ties", "outlier", "constant", "float32"])
def test_buckets_count_the_matches_ranked_before_each_item(case):
    # _buckets bins by value for speed; it must equal counting "match ranks before item" in the stable
    # order (distance, then column), whatever the value distribution
    from mcja_hub.evaluation.metrics import _buckets
    rng = np.random.default_rng(3)
    rows, n = 9, 300
    d = rng.normal(size=(rows, n))
    if case == "ties":
        d = np.round(d * 2) / 2
    elif case == "outlier":
        d[:, 7] = 1e30  # every other value lands in the lowest bin
    elif case == "constant":
        d[:] = 0.25
    d = torch.tensor(d, dtype=torch.float32 if case == "float32" else torch.float64)
    n_match = torch.tensor(rng.integers(0, 40, rows))
    width = int(n_match.max())
    cols = torch.tensor(np.stack([np.sort(rng.choice(n, width, replace=False)) for _ in range(rows)]))
    match_d, perm = torch.sort(torch.where(torch.arange(width) < n_match[:, None], d.gather(1, cols), torch.inf),
                               dim=1, stable=True)
    match_col = cols.gather(1, perm)
    got = _buckets(d, match_d, match_col, n_match)
    for i in range(rows):
        for j in range(n):
            want = sum(1 for m in range(int(n_match[i]))
                       if (match_d[i, m], match_col[i, m]) < (d[i, j], j))
            assert got[i, j] == want, (case, i, j)
