"""The figures several labs share: training histories, image grids, bird grids; and the two
helpers the topic wings' figures and viewers share (`display_array`, `figure_png`).

Every function returns its figure and never calls `plt.show()`. In a notebook,
`fig = plot_history(...)` shows the figure once; a bare `plot_history(...)` as the last line of a
cell would show it twice (once by the inline backend, once as the value), so assign it or end the
line with `;`. One lab's figures live in its topic wing: `labkit.vgg.figures` (receptive fields),
`labkit.triplets.gallery` and `labkit.triplets.figures` (errors, embeddings, distances),
`labkit.attention.figures` (OPAM's panels).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labkit.data.transforms import to_display, to_display_imagenet
from labkit.training.loop import HISTORY_COLUMNS

__all__ = ["display_array", "figure_png", "plot_bird_grid", "plot_history", "plot_image_grid"]

_TEST_AS_VAL = {"test_loss": "val_loss", "test_acc": "val_acc"}  # a history shown with test_* names


def _as_dict(histories: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    named = {"": histories} if isinstance(histories, pd.DataFrame) else dict(histories)
    named = {name: history.rename(columns=_TEST_AS_VAL) for name, history in named.items()}
    if not named:
        raise ValueError("plot_history got no histories; pass a DataFrame or {name: DataFrame}")
    for name, history in named.items():
        missing = [c for c in HISTORY_COLUMNS[:5] if c not in history.columns]  # the curves
        if missing:
            raise ValueError(
                f"history {name or '(unnamed)'} lacks columns {missing}; "
                "pass the DataFrame returned by labkit.training.loop.fit"
            )
    return named


def _plot_pair(
    ax: Axes, history: pd.DataFrame, what: str, name: str, color: str, eval_name: str
) -> None:
    prefix = f"{name} " if name else ""
    for split, style, label in (("train", "-", "train"), ("val", "--", eval_name)):
        values = history[f"{split}_{what}"]
        if values.notna().any():
            ax.plot(history["epoch"], values, style, color=color, marker=".", label=prefix + label)


def plot_history(
    histories: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    title: str | None = None,
    axes: Sequence[Axes] | None = None,
    eval_name: str | None = None,
    accuracy: str = "accuracy",
) -> Figure:
    """Loss (left) and accuracy (right) per epoch: train solid, evaluated dashed, a colour each.

    Args:
        histories: a history from `labkit.training.loop.fit`, or {name: history} to compare models.
        title: figure title.
        axes: two axes to draw into; default a new 1x2 figure.
        eval_name: what `fit`'s `val_loader` held, for the legend; default "test" when the
            history's columns were renamed to `test_loss`/`test_acc` (labs 02 and 03 evaluate on
            their test set, and a figure never calls test data "val"), else "val".
        accuracy: the right axis's label, e.g. "triplet accuracy".
    """
    if eval_name is None:
        tables = [histories] if isinstance(histories, pd.DataFrame) else list(histories.values())
        renamed = any("test_loss" in t.columns for t in tables if isinstance(t, pd.DataFrame))
        eval_name = "test" if renamed else "val"
    named = _as_dict(histories)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    else:
        fig = axes[0].get_figure()
    loss_ax, acc_ax = axes
    for i, (name, history) in enumerate(named.items()):
        _plot_pair(loss_ax, history, "loss", name, f"C{i}", eval_name)
        _plot_pair(acc_ax, history, "acc", name, f"C{i}", eval_name)
    for ax, label in ((loss_ax, "loss"), (acc_ax, accuracy)):
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
    column_titles: Sequence[str] | None = None,
) -> Figure:
    """A grid of images, each titled with its class name.

    Args:
        images: (N, 3, H, W), uint8 or normalised float (see `labkit.data.to_display`).
        labels: N class indices, or None for no titles.
        class_names: names indexed by label; default the label itself.
        ncols: images per row.
        title: figure title.
        column_titles: `ncols` headings above the first row's images, e.g. ("anchor",
            "positive", "negative") for a grid of triplets; ValueError for another count.
    Used in: 02_densenet_resnext, 03_facenet_knn.
    """
    if len(images) == 0:
        raise ValueError("plot_image_grid got no images")
    if column_titles is not None and len(column_titles) != ncols:
        raise ValueError(
            f"column_titles needs one heading per column ({ncols}), got {len(column_titles)}"
        )
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
        name = ""
        if labels is not None:
            label = int(labels[index])
            name = class_names[label] if class_names else str(label)
        if column_titles is not None and index < ncols:
            name = f"{column_titles[index]}\n{name}" if name else column_titles[index]
        if name:
            ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_bird_grid(
    dataset, classes: Sequence[int], per_class: int = 6, title: str | None = None
) -> Figure:
    """One row per class of a bird dataset: each image with its box (red) and visible parts.

    Args:
        dataset: a `labkit.data.CubDataset` with `with_geometry=True` (items are image, label,
            box x1 y1 x2 y2, parts (P, 3)).
        classes: the labels of the rows.
        per_class: images per row (the first ones of each class in the dataset).
    Raises ValueError for a dataset without geometry or a class with no image.
    Used in: RESULTS.md (the synthetic birds), 04_bcnn_hbp, 05_opam.
    """
    if not getattr(dataset, "with_geometry", False):
        raise ValueError("plot_bird_grid needs a CubDataset made with with_geometry=True")
    labels = np.asarray(dataset.labels)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.6 * per_class, 1.8 * len(classes)),
                             squeeze=False)  # fmt: skip
    for r, label in enumerate(classes):
        members = np.flatnonzero(labels == label)[:per_class]
        if len(members) == 0:
            raise ValueError(f"class {label} has no image in this dataset")
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c >= len(members):
                continue
            image, _, box, parts = dataset[int(members[c])]
            ax.imshow(to_display_imagenet(image))
            x1, y1, x2, y2 = box.tolist()
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="red", lw=1))
            seen = parts[:, 2] > 0
            ax.scatter(parts[seen, 0], parts[seen, 1], s=5, c="cyan")
        name = dataset.class_names[label].split(".", 1)[-1].replace("_", " ")
        axes[r][0].set_title(name, fontsize=8, loc="left")  # spans the row
    if title:
        fig.suptitle(title)
    height = fig.get_figheight()  # inches: room for the title and the first row's name
    top = 1 - (0.6 if title else 0.25) / height
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top, wspace=0.04, hspace=0.22)
    return fig


def display_array(image) -> np.ndarray:
    """An image as an array matplotlib shows: (H, W, 3) from a (3, H, W) or (1, 3, H, W) tensor
    (uint8; float in [0, 1]; else ImageNet-normalised), a PIL image, or an (H, W[, 3]) array.

    Raises ValueError for a tensor that is not one RGB image or an array of another shape.
    Used by the receptive-field and attention figures (`labkit.vgg.figures`,
    `labkit.attention.figures`).
    """
    if isinstance(image, torch.Tensor):
        x = image.detach().cpu()
        x = x[0] if x.ndim == 4 and x.shape[0] == 1 else x
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"need an image tensor (3, H, W), got {tuple(image.shape)}")
        if x.dtype == torch.uint8:
            return x.movedim(0, -1).numpy()
        if x.min() >= 0 and x.max() <= 1:  # ToTensor's output, not normalised
            return x.float().movedim(0, -1).numpy()
        return to_display_imagenet(x)  # what torchvision's VGG weights are fed
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return array
    raise ValueError(
        f"need an image (H, W, 3) array, a (3, H, W) tensor or a PIL image, got {array.shape}"
    )


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (100 dpi), cropped to what it draws (titles and legends outside the
    axes included, as Jupyter's inline figures are): what the viewers' image widgets show."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()
