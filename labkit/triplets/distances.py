"""Distances: embeddings (N, D) in, an (N, N) matrix out."""

from __future__ import annotations

import torch

__all__ = ["pairwise_distances"]


def pairwise_distances(embeddings: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distances (N, N) between the rows of `embeddings` (N, D); zero diagonal.

    Uses `torch.cdist` without its matrix-product shortcut: the shortcut (|x|^2 + |y|^2 - 2xy)
    loses the small distances to rounding, which would make mining depend on noise.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be (N, D), got shape {tuple(embeddings.shape)}; "
            "flatten stacked triplets (B, 3, D) with .flatten(0, 1) first"
        )
    distances = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    eye = torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    distances = distances.masked_fill(eye, 0.0)  # exact zeros, and no in-place edit for autograd
    return distances.square() if squared else distances
