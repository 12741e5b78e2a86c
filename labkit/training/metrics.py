"""Accuracy, the one metric every lab reports, and the top-k error of the VGG tables.

Used in: labkit.training.steps.Task (the default `metric_fn`), 01_vgg_receptive_fields,
02_densenet_resnext, 03_facenet_knn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["accuracy", "top_k_error"]


def _tensor(x: Any) -> torch.Tensor:
    return x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def accuracy(outputs: Any, labels: Any, k: int = 1) -> float:
    """Fraction of samples classified right, from predicted classes or from class scores.

    Args:
        outputs: predicted classes (N,), or scores / logits (N, num_classes); a tensor, a
            NumPy array or a sequence.
        labels: true classes (N,).
        k: with scores, a sample counts as right when its label is among the `k` largest
            scores (top-k; k is capped at num_classes, so top-5 of 3 classes is 1.0). Must be 1
            for predicted classes.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: empty input, mismatched lengths, or k > 1 with predicted classes.
    """
    outputs, labels = _tensor(outputs), _tensor(labels).to(device=_tensor(outputs).device)
    if outputs.ndim not in (1, 2) or labels.ndim != 1 or len(outputs) != len(labels):
        raise ValueError(
            "accuracy needs predictions (N,) or scores (N, num_classes) and labels (N,), got "
            f"{tuple(outputs.shape)} and {tuple(labels.shape)}"
        )
    if len(labels) == 0:
        raise ValueError("accuracy of an empty batch is undefined; pass at least one sample")
    if outputs.ndim == 1:
        if k != 1:
            raise ValueError(f"top-{k} accuracy needs scores (N, num_classes), not predictions")
        return (outputs.long() == labels.long()).float().mean().item()
    top = outputs.topk(min(k, outputs.shape[-1]), dim=-1).indices  # (N, k)
    return (top == labels.long().unsqueeze(-1)).any(dim=-1).float().mean().item()


def top_k_error(scores: Any, labels: Any, k: int = 1) -> float:
    """Fraction of samples whose true label is not among the `k` highest scores: 1 - accuracy.

    Handout 001 (the ILSVRC measure of Simonyan & Zisserman 2015): top-1 error counts the
    samples whose best-scored class is wrong, top-5 error those whose label is not among the
    five best. k >= num_classes gives 0 (every label is in the top k).

    Args:
        scores: scores, logits or posteriors (N, num_classes), or predicted classes (N,) with k=1.
        labels: true classes (N,).
        k: how many of the highest scores may hold the label.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: as `accuracy` (empty input, mismatched lengths, k > 1 with predictions).
    """
    return 1.0 - accuracy(scores, labels, k)
