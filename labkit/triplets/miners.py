"""Miners: pick triplets inside a batch; they return only indices, computed under `no_grad`.

Both work on the batch's (N, N) distance matrix and never build an (N, N, N) tensor, so a
batch of thousands of embeddings is fine (see PITFALLS: the N^3 mask overflows int32 indexing
above N of about 1,290).

Used in: 03_facenet_knn (additional question: batch-hard and semi-hard mining).
"""

from __future__ import annotations

import math

import torch

from labkit.triplets.distances import pairwise_distances

__all__ = ["batch_hard", "batch_semi_hard"]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _masks(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) boolean (N, N) masks; a row is never its own positive."""
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
        raise ValueError(
            f"need embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    same = labels[:, None] == labels[None, :]  # (N, N)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


@torch.no_grad()
def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """Per anchor, its farthest positive and nearest negative (Hermans et al. 2017).

    Args:
        embeddings: (N, D). labels: (N,).

    Returns:
        (anchor_idx, positive_idx, negative_idx), int64 (M,): one triplet per anchor that has
        a positive and a negative in the batch (others are dropped); ties go to the lower index.
    """
    positive, negative = _masks(embeddings, labels)
    distances = pairwise_distances(embeddings)  # (N, N)
    hardest_positive = distances.masked_fill(~positive, -math.inf).argmax(dim=1)  # (N,)
    hardest_negative = distances.masked_fill(~negative, math.inf).argmin(dim=1)  # (N,)
    anchors = torch.nonzero(positive.any(dim=1) & negative.any(dim=1)).squeeze(1)
    return anchors, hardest_positive[anchors], hardest_negative[anchors]


@torch.no_grad()
def batch_semi_hard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
    """For every anchor-positive pair, the nearest negative with d_ap < d_an < d_ap + margin.

    Semi-hard negatives (FaceNet, Schroff et al. 2015) are farther than the positive, yet still
    violate the margin. A pair without one is dropped, not given the hardest negative instead:
    its negatives are then all easy (zero loss anyway) or all harder than the positive, and
    FaceNet avoids those because they collapse training early on.

    Per anchor, negatives are sorted by distance once; a binary search (`torch.searchsorted`)
    then finds each positive's first farther negative: O(N^2 log N) time, O(N^2) memory.

    Returns:
        (anchor_idx, positive_idx, negative_idx), int64 (M,), pairs in row-major order; ties
        between negatives go to the lower index. Possibly empty (M = 0).
    """
    if not margin > 0:
        raise ValueError(
            f"semi-hard mining needs margin > 0 (d_ap < d_an < d_ap + margin), got {margin!r}"
        )
    positive, negative = _masks(embeddings, labels)
    distances = pairwise_distances(embeddings)  # (N, N), d[a, p]
    negative_d = distances.masked_fill(~negative, math.inf)
    sorted_d, order = negative_d.sort(dim=1, stable=True)  # (N, N) per anchor, nearest first
    first = torch.searchsorted(sorted_d, distances, right=True)  # first negative with d_an > d_ap
    first = first.clamp(max=len(labels) - 1)
    candidate = sorted_d.gather(1, first)  # (N, N) its distance (or a smaller one if none)
    found = positive & (candidate > distances) & (candidate < distances + margin)
    anchors, positives = torch.nonzero(found, as_tuple=True)
    return anchors, positives, order[anchors, first[anchors, positives]]
