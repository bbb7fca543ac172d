from collections import Counter

import numpy as np
import pytest

from mcja_hub.data.sampler import PKSampler


def make_labels(counts):
    labels = [pid for pid, n in enumerate(counts) for _ in range(n)]
    rng = np.random.default_rng(0)
    modalities = rng.integers(0, 2, len(labels)).tolist()
    return labels, modalities


COUNTS = [40, 17, 16, 9, 33, 5, 64, 20, 16, 16, 12, 48]


def test_batch_composition_and_chunking():
    labels, _ = make_labels(COUNTS)
    s = PKSampler(labels, p=4, k=8, seed=1)
    batches = list(s)
    assert batches and len(batches) == len(s)
    used = Counter()
    for b in batches:
        ids = Counter(labels[i] for i in b)
        assert len(b) == 32 and len(ids) == 4 and set(ids.values()) == {8}
        used.update(ids)
    # each id contributes at most its number of chunks: floor(n / K), or 1 (with replacement) if n < K
    for pid, n in enumerate(COUNTS):
        assert used[pid] // 8 <= max(1, n // 8)
    # ids with fewer than K images are drawn with replacement
    small = [b for b in batches if 5 in {labels[i] for i in b}]
    assert small and all(len({i for i in b if labels[i] == 5}) <= 5 for b in small)
    # within an epoch, an index appears at most once unless its id was resampled
    for pid, n in enumerate(COUNTS):
        if n >= 8:
            idx = [i for b in batches for i in b if labels[i] == pid]
            assert len(idx) == len(set(idx))


def test_epoch_ends_when_fewer_than_p_ids_have_chunks():
    labels, _ = make_labels([8, 8, 8, 64])  # id 3 has 8 chunks, the others 1
    batches = list(PKSampler(labels, p=2, k=8, seed=0))
    # at most 3 batches can pair id 3 with another id; then only id 3 has chunks left
    assert len(batches) == 3 and all({labels[i] for i in b} >= {3} for b in batches)


def test_deterministic_per_seed_and_epoch():
    labels, _ = make_labels(COUNTS)
    a, b = PKSampler(labels, 4, 8, seed=3), PKSampler(labels, 4, 8, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(PKSampler(labels, 4, 8, seed=4)) != list(PKSampler(labels, 4, 8, seed=3))


def test_two_ranks_disjoint_and_equal_length():
    labels, _ = make_labels(COUNTS * 3)
    full = PKSampler(labels, 4, 4, seed=9)
    ranks = [PKSampler(labels, 4, 4, seed=9, num_replicas=2, rank=r) for r in (0, 1)]
    b0, b1 = list(ranks[0]), list(ranks[1])
    assert len(b0) == len(b1) == len(ranks[0]) == len(ranks[1]) == len(full) // 2
    assert not {tuple(b) for b in b0} & {tuple(b) for b in b1}
    assert sorted(map(tuple, b0 + b1)) == sorted(map(tuple, full.all_batches()[: 2 * len(b0)]))


def test_balanced_modalities():
    labels, modalities = make_labels(COUNTS)
    modalities[: COUNTS[0]] = [0] * COUNTS[0]  # id 0 is visible-only: cannot be balanced
    s = PKSampler(labels, 4, 8, modalities=modalities, balance_modalities=True, seed=2)
    assert s.skipped_ids == [0]
    batches = list(s)
    assert batches
    for b in batches:
        for pid in {labels[i] for i in b}:
            mods = Counter(modalities[i] for i in b if labels[i] == pid)
            assert mods == {0: 4, 1: 4}
        assert 0 not in {labels[i] for i in b}


def test_bad_arguments():
    labels, modalities = make_labels([10, 10])
    with pytest.raises(ValueError, match="fewer than p=3"):
        PKSampler(labels, 3, 4)
    with pytest.raises(ValueError, match="even k"):
        PKSampler(labels, 2, 3, modalities=modalities, balance_modalities=True)
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        PKSampler(labels, 2, 4, num_replicas=2, rank=2)
