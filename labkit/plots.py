"""Matplotlib figures for the labs; every function returns its figure and never calls `plt.show()`.

In a notebook, `fig = plot_history(...)` shows the figure once; a bare `plot_history(...)` as
the last line of a cell would show it twice (once by the inline backend, once as the value),
so assign it or end the line with `;`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def _as_dict(histories: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    named = {"": histories} if isinstance(histories, pd.DataFrame) else dict(histories)
    if not named:
        raise ValueError("plot_history got no histories; pass a DataFrame or {name: DataFrame}")
    for name, history in named.items():
        missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
        if missing:
            raise ValueError(
                f"history {name or '(unnamed)'} lacks columns {missing}; "
                "pass the DataFrame returned by labkit.train.fit"
            )
    return named


def _plot_pair(ax: Axes, history: pd.DataFrame, what: str, name: str, color: str) -> None:
    prefix = f"{name} " if name else ""
    for split, style in (("train", "-"), ("val", "--")):
        values = history[f"{split}_{what}"]
        if values.notna().any():
            ax.plot(history["epoch"], values, style, color=color, marker=".", label=prefix + split)


def plot_history(
    histories: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    title: str | None = None,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Loss (left) and accuracy (right) per epoch; train solid, val dashed, a colour per model.

    Args:
        histories: a history from `labkit.train.fit`, or {name: history} to compare models.
        title: figure title.
        axes: two axes to draw into; default a new 1x2 figure.
    """
    named = _as_dict(histories)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    else:
        fig = axes[0].get_figure()
    loss_ax, acc_ax = axes
    for i, (name, history) in enumerate(named.items()):
        _plot_pair(loss_ax, history, "loss", name, f"C{i}")
        _plot_pair(acc_ax, history, "acc", name, f"C{i}")
    for ax, label in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(
                0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes
            )
    if title:
        fig.suptitle(title)
    return fig


def plot_image_grid(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    title: str | None = None,
) -> Figure:
    """A grid of images, each titled with its class name.

    Args:
        images: (N, 3, H, W), uint8 or normalised float (see `labkit.data.to_display`).
        labels: N class indices, or None for no titles.
        class_names: names indexed by label; default the label itself.
        ncols: images per row.
        title: figure title.
    Used in: 02_densenet_resnext.
    """
    from labkit.data.tensor_dataset import to_display

    if len(images) == 0:
        raise ValueError("plot_image_grid got no images")
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(0.9 * ncols, 1.0 * nrows + 0.3), squeeze=False, layout="constrained"
    )
    pictures = to_display(images)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        ax.imshow(pictures[index])
        if labels is not None:
            label = int(labels[index])
            ax.set_title(class_names[label] if class_names else str(label), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
