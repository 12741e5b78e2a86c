"""OPAM's final prediction: a weighted sum of the soft-max scores of its three networks.

Handout 004 §1.5.4: final = α · ClassNet + β · ObjectNet + γ · PartNet, the weights chosen by
k-fold cross-validation (`choose_fusion_weights`) over a grid of weights summing to 1
(`weight_grid`).

Used in: 05_opam.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import NamedTuple

import pandas as pd
import torch

from labkit.training.metrics import accuracy

__all__ = [
    "AUTHORS_WEIGHTS",
    "FusionChoice",
    "accuracy",
    "choose_fusion_weights",
    "fuse_scores",
    "weight_grid",
]

# (ClassNet, ObjectNet, PartNet): the fixed weights of the authors' released code (its
# score_fusion.m, written for Stanford Cars, the 0.2 on the mean of two part networks); the
# paper chooses the weights by k-fold cross-validation.
AUTHORS_WEIGHTS = (0.5, 0.3, 0.2)

# Floats of one (grid points, images, classes) block of fused scores: 2**24 = 64 MiB.
_BLOCK_ELEMENTS = 2**24


class FusionChoice(NamedTuple):
    """What `choose_fusion_weights` found."""

    weights: torch.Tensor  # (num_scores,) the grid weights best on all the given images
    accuracy: float  # their accuracy on all the given images (in-sample: optimistic)
    cv_accuracy: float  # mean held-out accuracy of the weights each fold chose
    folds: pd.DataFrame  # one row per fold: weights chosen, train and held-out accuracy


def _probabilities(scores: Sequence[torch.Tensor], softmax: bool) -> torch.Tensor:
    """Stack the networks' scores (num_scores, N, C), as soft-max probabilities."""
    if len(scores) == 0:
        raise ValueError("fusion needs the scores of at least one network, got none")
    shapes = {tuple(s.shape) for s in scores}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            f"every network's scores must be (N, num_classes) of one shape; got "
            f"{[tuple(s.shape) for s in scores]}"
        )
    stacked = torch.stack([s.detach().float() for s in scores])
    return stacked.softmax(dim=-1) if softmax else stacked


def fuse_scores(
    scores: Sequence[torch.Tensor], weights: Sequence[float], *, softmax: bool = True
) -> torch.Tensor:
    """The weighted sum of the networks' soft-max scores.

    Args:
        scores: each network's logits (N, num_classes), e.g. (ClassNet, ObjectNet, PartNet).
        weights: one non-negative weight per network, summing to 1 (so the result is again
            a probability per class), e.g. `AUTHORS_WEIGHTS`.
        softmax: False when `scores` already hold probabilities.
        criterion: "accuracy" or "log_loss".

    Returns:
        (N, num_classes) fused probabilities; their argmax is the prediction.
    """
    probs = _probabilities(scores, softmax)  # (S, N, C)
    weights = torch.as_tensor(weights, dtype=probs.dtype, device=probs.device)
    if weights.shape != (len(probs),):
        raise ValueError(
            f"fuse_scores needs one weight per network: {len(probs)} networks, "
            f"{tuple(weights.shape)} weights"
        )
    if (weights < 0).any() or abs(weights.sum().item() - 1.0) > 1e-6:
        raise ValueError(
            f"fusion weights must be non-negative and sum to 1; got {weights.tolist()}"
        )
    return torch.einsum("s,snc->nc", weights, probs)


def weight_grid(num_scores: int = 3, step: float = 0.1) -> torch.Tensor:
    """Every vector of `num_scores` non-negative multiples of `step` summing to 1.

    Rows run from the most even to the most lopsided (by the sum of squared weights), then
    from larger to smaller weights of the earlier networks; `choose_fusion_weights` keeps the
    first of tied rows, so ties go to the most even weights.

    Returns:
        float64 (G, num_scores) with G = (k + num_scores - 1) choose (num_scores - 1), k = 1 /
        step: 66 rows for 3 networks and a step of 0.1.
    """
    if num_scores < 1:
        raise ValueError(f"weight_grid needs num_scores >= 1, got {num_scores}")
    k = round(1 / step) if step > 0 else 0
    if k < 1 or abs(k * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 into whole steps (0.1, 0.05, 0.25...), got {step}")
    # Stars and bars: the num_scores - 1 bar positions among k + num_scores - 1 slots.
    counts = []
    for bars in combinations(range(k + num_scores - 1), num_scores - 1):
        edges = (-1, *bars, k + num_scores - 1)
        counts.append(tuple(b - a - 1 for a, b in pairwise(edges)))
    counts.sort(key=lambda c: (sum(x * x for x in c), [-x for x in c]))
    return torch.tensor(counts, dtype=torch.float64) / k


def _grid_correct(probs: torch.Tensor, labels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Whether each grid point's fused prediction is right on each image: bool (G, N)."""
    _, num, classes = probs.shape
    block = max(1, _BLOCK_ELEMENTS // (len(grid) * classes))
    correct = [
        torch.einsum("gs,snc->gnc", grid, probs[:, start : start + block]).argmax(dim=-1)
        == labels[start : start + block]
        for start in range(0, num, block)
    ]
    return torch.cat(correct, dim=1)


def choose_fusion_weights(
    scores: Sequence[torch.Tensor],
    labels: torch.Tensor,
    *,
    n_splits: int = 5,
    step: float = 0.1,
    seed: int = 0,
    softmax: bool = True,
    criterion: str = "accuracy",
) -> FusionChoice:
    """Fusion weights by k-fold cross-validation over `weight_grid(len(scores), step)`.

    Each fold picks the grid weights best on the other folds by `criterion` and scores their
    accuracy on itself; the mean of those held-out accuracies estimates how well choosing
    weights this way generalises. The returned weights are the grid's best on all the given
    images. `criterion` "accuracy" counts right answers; "log_loss" is the mean of
    -log(fused probability of the true class), which on a few dozen images separates weights
    that accuracy ties (one image is a whole step of accuracy) and does not reward a network
    that happens to be lucky on them. All grid
    points are scored at once (one einsum per block of images). Ties go to the first grid row,
    the most even weights (see `weight_grid`).

    Pass the scores of images none of the three networks was trained on (a validation split):
    on their training images the networks are near 100% right, every weighting looks perfect
    and the choice says nothing about test images.

    Args:
        scores: each network's logits (N, num_classes) on the same images, in one order.
        labels: (N,) true classes.
        n_splits: folds of scikit-learn's KFold(shuffle=True, random_state=seed).
        step: the grid's step.
        seed: the folds' shuffle.
        softmax: False when `scores` already hold probabilities.
        criterion: "accuracy" or "log_loss".

    Returns:
        FusionChoice(weights (num_scores,), accuracy, cv_accuracy, folds) with folds columns
        fold, n_held_out, weight_0 .. weight_{num_scores - 1}, train_accuracy,
        held_out_accuracy.
    """
    from sklearn.model_selection import KFold

    probs = _probabilities(scores, softmax)  # (S, N, C)
    labels = torch.as_tensor(labels, device=probs.device).long()
    if labels.shape != probs.shape[1:2]:
        raise ValueError(
            f"labels must be ({probs.shape[1]},), one per image; got {tuple(labels.shape)}"
        )
    if not 2 <= n_splits <= len(labels):
        raise ValueError(f"n_splits must be in 2 .. {len(labels)} (the images), got {n_splits}")
    if criterion not in ("accuracy", "log_loss"):
        raise ValueError(f"criterion must be 'accuracy' or 'log_loss', got {criterion!r}")
    grid = weight_grid(len(probs), step)  # (G, S) float64
    correct = _grid_correct(probs, labels, grid.to(probs)).float()  # (G, N)
    if criterion == "accuracy":
        merit = correct
    else:  # the fused probability of the true class is the weights times each network's
        true_class = probs.gather(2, labels.view(1, -1, 1).expand(len(probs), -1, 1))[..., 0]
        merit = torch.log(grid.to(probs) @ true_class + 1e-12)  # (G, N), higher is better
    rows = []
    folds = KFold(n_splits, shuffle=True, random_state=seed).split(labels.cpu().numpy())
    for fold, split in enumerate(folds):
        train, held_out = (torch.as_tensor(idx, device=probs.device) for idx in split)
        best = int(merit[:, train].mean(dim=1).argmax())  # the first of tied rows
        train_acc = correct[:, train].mean(dim=1)  # (G,)
        rows.append(
            {
                "fold": fold,
                "n_held_out": len(held_out),
                **{f"weight_{s}": grid[best, s].item() for s in range(len(probs))},
                "train_accuracy": train_acc[best].item(),
                "held_out_accuracy": correct[best, held_out].mean().item(),
            }
        )
    table = pd.DataFrame(rows)
    best = int(merit.mean(dim=1).argmax())
    return FusionChoice(
        grid[best], correct[best].mean().item(), float(table["held_out_accuracy"].mean()), table
    )
