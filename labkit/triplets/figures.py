"""Lab 03's figures of the embedding: its 2-d projection, one colour per class, and the
anchor-positive against anchor-negative distances of triplets, before and after training.

Used in: 03_facenet_knn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_distance_histograms", "plot_embedding_2d"]


def plot_embedding_2d(
    points: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    class_names: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Scatter of 2-d points (N, 2), a colour per class (from
    `labkit.triplets.embeddings.project_2d`).

    Used in: 03_facenet_knn (embedding plot).
    """
    points = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if points.ndim != 2 or points.shape[1] != 2 or labels.shape != (len(points),):
        raise ValueError(
            f"need points (N, 2) and labels (N,), got {points.shape} and {labels.shape}; "
            "project the embeddings first with labkit.triplets.embeddings.project_2d"
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    else:
        fig = ax.get_figure()
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k, label in enumerate(classes):
        mask = labels == label
        name = str(class_names[int(label)]) if class_names else str(label)
        color = cmap(k % cmap.N)
        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=color, label=name, alpha=0.8)
    ax.legend(title="class", fontsize=8, markerscale=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def plot_distance_histograms(
    distances: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    margin: float,
    *,
    bins: int = 30,
) -> Figure:
    """Histograms of anchor-positive and anchor-negative distances, one panel per stage.

    Args:
        distances: {stage name, e.g. "before training": (d(a, p) (B,), d(a, n) (B,))}.
        margin: drawn as a line: a triplet violates it while d(a, n) < d(a, p) + margin.
        bins: histogram bins, shared by all panels.
    Each panel's title gives the fraction of triplets violating the margin.
    Used in: 03_facenet_knn.
    """
    if not distances:
        raise ValueError("plot_distance_histograms got no distances")
    fig, axes = plt.subplots(
        1, len(distances), figsize=(5 * len(distances), 3.4), squeeze=False, layout="constrained"
    )
    top = max(float(torch.cat([ap, an]).max()) for ap, an in distances.values())
    edges = np.linspace(0.0, top * 1.02 + 1e-9, bins + 1)
    for ax, (stage, (ap, an)) in zip(axes[0], distances.items(), strict=True):
        ap, an = torch.as_tensor(ap).double(), torch.as_tensor(an).double()
        ax.hist(ap.numpy(), edges, alpha=0.6, label="anchor-positive d(a, p)")
        ax.hist(an.numpy(), edges, alpha=0.6, label="anchor-negative d(a, n)")
        violating = float((an < ap + margin).double().mean())
        ax.set_title(
            f"{stage}\n{violating:.0%} of triplets violate the margin {margin:g}", fontsize=10
        )
        ax.set_xlabel("distance in embedding space")
        ax.set_ylabel("triplets")
        ax.legend(fontsize=8)
    return fig
