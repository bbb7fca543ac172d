"""P identities x K images batches (docs/method.md §4, the released ``NormTripletSampler``), distributed-aware."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np


class PKSampler:
    """A batch sampler: each batch is K images of each of P distinct identities.

    Per epoch, each identity's images are shuffled and cut into chunks of K (the remainder is
    dropped; an identity with fewer than K images gives one chunk drawn with replacement). Batches
    take one chunk from each of P distinct identities that still have chunks, until fewer than P
    do. With ``balance_modalities`` each chunk is K/2 visible + K/2 infrared images instead (chunks
    are cut per modality; identities seen in one modality only are left out, with a count in
    ``skipped_ids``).

    Deterministic per (seed, epoch) — call ``set_epoch`` each epoch, as with DistributedSampler.
    With ``num_replicas > 1`` every rank builds the same batch list and takes every
    ``num_replicas``-th batch from ``rank``, after trimming to a multiple of ``num_replicas``: the
    ranks' batches are disjoint and equally many.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, modalities: Sequence[int] | None = None,
                 balance_modalities: bool = False, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if p < 1 or k < 1:
            raise ValueError(f"PKSampler needs p >= 1 and k >= 1, got p={p}, k={k}")
        if balance_modalities and (modalities is None or k % 2):
            raise ValueError("balance_modalities needs the modality of every image and an even k")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.p, self.k, self.seed = p, k, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.balance = balance_modalities
        self.epoch = 0
        groups: dict[int, list[list[int]]] = defaultdict(lambda: [[], []])
        for i, label in enumerate(labels):
            groups[int(label)][int(modalities[i]) if balance_modalities else 0].append(i)
        self.skipped_ids = [pid for pid, g in groups.items() if balance_modalities and not (g[0] and g[1])]
        self.groups = {pid: g for pid, g in sorted(groups.items()) if pid not in self.skipped_ids}
        if len(self.groups) < p:
            raise ValueError(f"PKSampler: {len(self.groups)} usable identities, fewer than p={p}")
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _chunks(self, indices: list[int], size: int, rng: np.random.Generator) -> list[list[int]]:
        if len(indices) < size:
            return [rng.choice(indices, size, replace=True).tolist()]
        order = rng.permutation(indices).tolist()
        return [order[i:i + size] for i in range(0, len(order) - size + 1, size)]

    def all_batches(self) -> list[list[int]]:
        """Every rank's batches for the current epoch, before the per-rank split."""
        if self._cache and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks: dict[int, list[list[int]]] = {}
        for pid, (first, second) in self.groups.items():
            if self.balance:
                half = self.k // 2
                vis, ir = self._chunks(first, half, rng), self._chunks(second, half, rng)
                chunks[pid] = [v + i for v, i in zip(vis, ir)]
            else:
                chunks[pid] = self._chunks(first, self.k, rng)
        batches = []
        while True:
            available = [pid for pid, c in chunks.items() if c]
            if len(available) < self.p:
                break
            batch = []
            for pid in rng.choice(available, self.p, replace=False).tolist():
                batch += chunks[pid].pop()
            batches.append(batch)
        batches = batches[: len(batches) - len(batches) % self.num_replicas]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.all_batches()[self.rank::self.num_replicas])

    def __len__(self) -> int:
        return len(self.all_batches()) // self.num_replicas
