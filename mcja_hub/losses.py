"""MCJA losses (docs/method.md §3): the Cross-Modality Retrieval (CMR) ranking loss and the identity loss.

No compiled dependency: torchsort's l2 soft rank is computed exactly in plain torch, and at the
released constants a closed form of it is used (it is exact there, see ``closed_form_valid``).
Nothing here branches on tensor values, so a training step never waits for the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def isotonic_nonincreasing(y: torch.Tensor) -> torch.Tensor:
    """Row-wise least-squares fit of a non-increasing sequence to ``y`` (R, n).

    Uses the min-max formula v_i = min_{j<=i} max_{k>=i} mean(y[j..k]) (the same optimum PAV finds)
    in O(n^2) memory per row, fully vectorised; autograd through it gives the exact Jacobian
    (block averages) almost everywhere.
    """
    n = y.shape[-1]
    csum = F.pad(y.cumsum(-1), (1, 0))  # csum[:, t] = sum of y[:, :t]
    j = torch.arange(n, device=y.device)
    length = (j[None, :] - j[:, None] + 1).to(y.dtype)  # [j, k] -> k - j + 1
    means = (csum[:, None, 1:] - csum[:, :-1, None]) / length.clamp(min=1)  # [r, j, k] = mean(y[j..k])
    lower = j[None, :] < j[:, None]  # k < j: not a block
    means = means.masked_fill(lower, float("-inf"))
    suffix_max = means.flip(-1).cummax(-1).values.flip(-1)  # [r, j, i] = max_{k >= i} mean(y[j..k])
    return suffix_max.masked_fill(lower, float("inf")).amin(dim=-2)  # min over j <= i


def soft_rank(values: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """torchsort.soft_rank(values, regularization="l2", regularization_strength=eps), row-wise.

    Ascending: the smallest value gets the rank nearest 1, ranks lie in [1, n]. It is the Euclidean
    projection of values/eps onto the permutahedron of (1..n) (Blondel et al. 2020).
    """
    if values.ndim != 2:
        raise ValueError(f"soft_rank expects (rows, n) values, got shape {tuple(values.shape)}")
    n = values.shape[-1]
    s, perm = (values / eps).sort(dim=-1, descending=True)
    w = torch.arange(n, 0, -1, device=values.device, dtype=values.dtype)
    ranks_sorted = s - isotonic_nonincreasing(s - w)
    return torch.empty_like(ranks_sorted).scatter(-1, perm, ranks_sorted)


def closed_form_valid(values: torch.Tensor, eps: float) -> torch.Tensor:
    """Per row: True when its soft rank is the closed form (n + 1)/2 + (v - mean(v))/eps.

    The isotonic fit pools all n entries into one block iff every prefix of the sorted y = s - w has
    mean <= the overall mean. The prefix excess of s is at most (spread/eps)(n - k)/n, that of -w is
    exactly -(n - k)/2, so a row spread (max - min) <= eps * n / 2 is sufficient. For distances in
    [0, 1] this holds for every row when n >= 2 / eps: n >= 4 at the released eps = 0.5.
    """
    spread = values.amax(dim=-1) - values.amin(dim=-1)
    return spread <= eps * values.shape[-1] / 2


def soft_rank_closed_form(values: torch.Tensor, eps: float) -> torch.Tensor:
    n = values.shape[-1]
    return (n + 1) / 2 + (values - values.mean(dim=-1, keepdim=True)) / eps


def _soft_rank_within(values: torch.Tensor, member: torch.Tensor, eps: float, exact: bool) -> torch.Tensor:
    """Row i's soft rank among the entries ``member[i]`` only (ranks 1..G_i there; other entries: junk).

    Exact: the other entries are moved far below every member, so they take the lowest ranks as a
    block of their own and the members' ranks are their soft rank among themselves shifted by the
    number of others. Default: the closed form, and the exact ranks in the rows where it does not hold
    (galleries smaller than 2 / eps), chosen on the device.
    """
    size = member.sum(dim=1, keepdim=True)
    others = values.shape[1] - size
    low = values.detach().amin() - eps * (values.shape[1] + 1)
    ranks = soft_rank(torch.where(member, values, low), eps) - others
    if exact:
        return ranks
    mean = (values * member).sum(dim=1, keepdim=True) / size.clamp(min=1)
    closed = (size + 1) / 2 + (values - mean) / eps
    spread = (torch.where(member, values, -torch.inf).amax(dim=1, keepdim=True)
              - torch.where(member, values, torch.inf).amin(dim=1, keepdim=True))
    return torch.where(spread <= eps * size / 2, closed, ranks)


def cmr_loss(embeddings: torch.Tensor, person_ids: torch.Tensor, modalities: torch.Tensor,
             eps: float = 0.5, exact: bool = False) -> torch.Tensor:
    """Cross-Modality Retrieval loss (docs/method.md §3.1): L1 between soft ranks and the ideal ranking.

    For each modality present, its samples query the samples of the other modality(ies): distance
    (1 - cos)/2, soft ranks (ascending), target rank 1 for same-identity entries and G (the gallery
    size) for the rest, mean absolute error. Queries with no positive or no negative in the gallery
    are dropped; the loss is the mean over directions with valid queries (0 if none). Computed in fp32
    whatever the autocast state. ``exact=False`` uses the closed form in the rows where it is exact.

    Written with masks over the whole (B, B) distance matrix, so it never waits for the device: a
    direction is the set of queries sharing a modality, and each valid query weighs 1 / (its
    direction's valid queries) / (number of directions with a valid query).
    """
    if not (embeddings.shape[0] == person_ids.shape[0] == modalities.shape[0]):
        raise ValueError(f"cmr_loss: {embeddings.shape[0]} embeddings, {person_ids.shape[0]} person_ids, "
                         f"{modalities.shape[0]} modalities")
    if not eps > 0:
        raise ValueError(f"cmr_loss: eps must be > 0, got {eps}")
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        e = F.normalize(embeddings.float(), dim=1)
        dist = (1 - e @ e.T) / 2
        same_modality = modalities[:, None] == modalities[None, :]
        gallery = ~same_modality
        match = gallery & (person_ids[:, None] == person_ids[None, :])
        size, n_pos = gallery.sum(dim=1), match.sum(dim=1)
        valid = (n_pos > 0) & (n_pos < size)
        ranks = _soft_rank_within(dist, gallery, eps, exact)
        target = torch.where(match, 1.0, size[:, None].float())
        per_query = ((ranks - target).abs() * gallery).sum(dim=1) / size.clamp(min=1)
        weight = valid / (same_modality & valid[None, :]).sum(dim=1).clamp(min=1)  # 1 / valid queries of its direction
        # the sum of the weights is the number of directions; with none, the loss is 0 and keeps its graph
        return (weight * per_query).sum() / weight.sum().clamp(min=1)


@torch.no_grad()
def cross_modal_rank1(embeddings: torch.Tensor, person_ids: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
    """Rank-1 of cross-modal retrieval inside a batch, as a 0-dim tensor: the share of samples with a
    positive of another modality in the batch whose nearest sample of another modality (cosine) is of
    their identity. A training signal to log next to the CMR loss, whose value barely moves (docs/method.md §3.2)."""
    e = F.normalize(embeddings.detach().float(), dim=1)
    other = modalities[:, None] != modalities[None, :]
    nearest = (e @ e.T).masked_fill(~other, -torch.inf).argmax(dim=1)
    has_positive = (other & (person_ids[:, None] == person_ids[None, :])).any(dim=1)
    hits = (person_ids[nearest] == person_ids) & has_positive
    return hits.sum() / has_positive.sum().clamp(min=1)


class CMRLoss(nn.Module):
    def __init__(self, eps: float = 0.5, exact: bool = False) -> None:
        super().__init__()
        self.eps, self.exact = eps, exact

    def forward(self, embeddings, person_ids, modalities) -> torch.Tensor:
        return cmr_loss(embeddings, person_ids, modalities, self.eps, self.exact)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, exact={self.exact}"


def id_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Identity cross-entropy in fp32 (plain in MCJA; smoothing optional, off by default)."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


class IDLoss(nn.Module):
    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits, labels) -> torch.Tensor:
        return id_loss(logits, labels, self.label_smoothing)
