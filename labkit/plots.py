"""Matplotlib figures for the labs; every function returns its figure and never calls `plt.show()`.

In a notebook, `fig = plot_history(...)` shows the figure once; a bare `plot_history(...)` as
the last line of a cell would show it twice (once by the inline backend, once as the value),
so assign it or end the line with `;`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from labkit.training.loop import HISTORY_COLUMNS

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
    from labkit.data.tensor_dataset import to_display

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


# ---------------------------------------------------------------- error gallery (lab 03)


def _stored_images(images: torch.Tensor | object) -> torch.Tensor:
    """The image tensor (N, 3, H, W) of a TensorImageDataset, or `images` itself."""
    return getattr(images, "images", images)


def _check_error_table(errors: pd.DataFrame) -> None:
    from labkit.triplets.embeddings import ERROR_COLUMNS

    missing = [c for c in ERROR_COLUMNS if c not in errors.columns]
    if missing:
        raise ValueError(
            f"errors lacks columns {missing}; pass the DataFrame from "
            "labkit.triplets.embeddings.error_table"
        )


def _error_names(row: pd.Series, class_names: Sequence[str] | None) -> tuple[str, str]:
    """(true name, predicted name) of one error row."""
    if class_names:
        return str(class_names[int(row["true"])]), str(class_names[int(row["pred"])])
    return str(row["true_name"]), str(row["pred_name"])


def _panels(row: pd.Series) -> int:
    """Images in one error's row: the test image, the two nearest, and the k voters."""
    return 3 + len(row["voters"])


def _draw_error(
    axes: Sequence[Axes],
    row: pd.Series,
    test_images: torch.Tensor,
    train_images: torch.Tensor,
    class_names: Sequence[str] | None,
) -> None:
    """Draw one error: the test image, the nearest training image of its true class and of the
    predicted class, then the k training images that voted (class and distance each)."""
    from labkit.data.tensor_dataset import to_display

    true, pred = _error_names(row, class_names)
    panels = [
        (test_images[int(row["test_index"])], f"test #{int(row['test_index'])}\n{true} as {pred}"),
        (
            train_images[int(row["nearest_true"])],
            f"nearest {true}\nd={float(row['nearest_true_dist']):.2f}",
        ),
        (
            train_images[int(row["nearest_pred"])],
            f"nearest {pred}\nd={float(row['nearest_pred_dist']):.2f}",
        ),
    ]
    for rank, (index, label, dist) in enumerate(
        zip(row["voters"], row["voter_classes"], row["voter_dists"], strict=True), start=1
    ):
        name = str(class_names[int(label)]) if class_names else str(int(label))
        panels.append((train_images[int(index)], f"vote {rank}: {name}\nd={float(dist):.2f}"))
    for ax, (image, title) in zip(axes, panels, strict=True):
        ax.imshow(to_display(image))
        ax.set_title(title, fontsize=8)
        ax.axis("off")


def plot_error_row(
    errors: pd.DataFrame,
    i: int,
    test_images: torch.Tensor,
    train_images: torch.Tensor,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Error `i` of `errors` as its own figure: test image, nearest true-class and predicted-class
    training images, and the k neighbours that voted.

    The figure is not registered with pyplot, so saving or browsing many of them shows none and
    leaks none; in a notebook, a bare `fig` shows it.

    Args:
        errors: the DataFrame from `labkit.triplets.embeddings.error_table`.
        i: row of `errors` (not the test index).
        test_images, train_images: (N, 3, H, W) uint8 or normalised float, or the
            TensorImageDatasets themselves (their stored, un-augmented images).
        class_names: names for the titles; default the table's `true_name` and `pred_name`.
    Used in: 03_facenet_knn (Question 5).
    """
    _check_error_table(errors)
    if not 0 <= i < len(errors):
        raise IndexError(f"error {i} out of range: the table has {len(errors)} errors")
    row = errors.iloc[i]
    fig = Figure(figsize=(1.4 * _panels(row), 1.75), layout="constrained")
    axes = fig.subplots(1, _panels(row))
    _draw_error(axes, row, _stored_images(test_images), _stored_images(train_images), class_names)
    return fig


def plot_error_gallery(
    errors: pd.DataFrame,
    test_images: torch.Tensor,
    train_images: torch.Tensor,
    class_names: Sequence[str] | None = None,
    *,
    max_rows: int | None = None,
) -> Figure:
    """One row per misclassified test image: it, the nearest training image of its true class
    and of the predicted class, and the k neighbours that voted, titled with class names and
    embedding distances.

    Args:
        errors: the DataFrame from `labkit.triplets.embeddings.error_table`.
        test_images, train_images: (N, 3, H, W) images, or the TensorImageDatasets.
        class_names: names for the titles; default the table's names.
        max_rows: show only the first `max_rows` errors (the title says how many of how many).
    Used in: 03_facenet_knn (Question 5).
    """
    _check_error_table(errors)
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be None or a positive int, got {max_rows!r}")
    total = len(errors)
    if total == 0:
        fig, ax = plt.subplots(figsize=(4.2, 1.0), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
        return fig
    shown = total if max_rows is None else min(total, max_rows)
    columns = _panels(errors.iloc[0])
    fig, axes = plt.subplots(
        shown,
        columns,
        figsize=(1.4 * columns, 1.7 * shown + 0.6),
        squeeze=False,
        layout="constrained",
    )
    test, train = _stored_images(test_images), _stored_images(train_images)
    for i in range(shown):
        _draw_error(axes[i], errors.iloc[i], test, train, class_names)
    count = f"{total} errors" if shown == total else f"first {shown} of {total} errors"
    fig.suptitle(
        f"{count}\ntest | nearest of true class | nearest of predicted | the k neighbours that "
        "voted",
        fontsize=9,
    )
    return fig


def _file_part(name: str) -> str:
    """`name` with every character other than letters, digits, '.', '-' and '_' made '_'."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def save_error_gallery(
    errors: pd.DataFrame,
    test_images: torch.Tensor,
    train_images: torch.Tensor,
    class_names: Sequence[str] | None,
    folder: str | Path,
) -> list[Path]:
    """Write one PNG per error (the three images of `plot_error_row`) into `folder`.

    Files are named `error_003_true_7_pred_1.png` (row, true and predicted class names); the
    folder is created if needed and nothing is written outside it. An earlier gallery's files
    (`error_*_true_*_pred_*.png`) in `folder` are deleted first, so the folder always holds
    exactly this table's errors; no other file is touched.

    Returns:
        the paths written, in the table's order.
    Used in: 03_facenet_knn (Question 5: hand in the pics/ folder).
    """
    _check_error_table(errors)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("error_*_true_*_pred_*.png"):  # a previous run's gallery
        old.unlink()
    paths = []
    for i in range(len(errors)):
        true, pred = _error_names(errors.iloc[i], class_names)
        path = folder / f"error_{i:03d}_true_{_file_part(true)}_pred_{_file_part(pred)}.png"
        plot_error_row(errors, i, test_images, train_images, class_names).savefig(path, dpi=120)
        paths.append(path)
    return paths


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
    from labkit.data.cub_dataset import to_display_imagenet

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


# ---------------------------------------------------------------- receptive field (lab 01)


def _picture(image) -> np.ndarray:
    """An image as an array matplotlib shows: (H, W, 3) from a (3, H, W) or (1, 3, H, W) tensor
    (uint8; float in [0, 1]; else ImageNet-normalised), a PIL image, or an (H, W[, 3]) array."""
    from labkit.data.cub_dataset import to_display_imagenet

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


def plot_receptive_field(image, table: pd.DataFrame, layer: str | int, row: int, col: int, *,
                         ax: Axes | None = None) -> Figure:  # fmt: skip
    """The input pixels that unit (row, col) of `layer` sees, drawn on the image.

    The full field is a dashed rectangle: where the image is grey around it, the field reaches
    into the zero padding. The part inside the image is shaded, the unit's centre is a dot, and
    the centres of all the layer's units are faint dots (layers of at most 16 x 16 units).

    Args:
        image: (H, W, 3) array, (3, H, W) tensor (uint8, float in [0, 1], or ImageNet-normalised)
            or PIL image, of the size the table was made for.
        table: from `labkit.vgg.receptive_field.receptive_field_table`.
        layer, row, col: the unit, as for `labkit.vgg.receptive_field.unit_field`.
        ax: where to draw; default a new figure.
    Raises:
        ValueError: a table made for another input size, an unknown layer or unit.
    Used in: 01_vgg_receptive_fields (`labkit.widgets.receptive_field_explorer` shows it).
    """
    from labkit.vgg.receptive_field import check_input_size, clip_field, unit_field

    picture = _picture(image)
    height, width = picture.shape[:2]
    check_input_size(table, height, width)
    box = unit_field(table, layer, row, col)  # checks the layer and the unit
    label = layer if layer in table.index else table.index[layer]
    info = table.loc[label]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5.6), layout="constrained")
    else:
        fig = ax.get_figure()
    ax.imshow(picture, extent=(0, width, height, 0), cmap="gray" if picture.ndim == 2 else None)
    ax.set_facecolor("0.85")  # the zero padding around the image
    ax.add_patch(plt.Rectangle((0, 0), width, height, fill=False, lw=0.8, color="black"))
    size, jump, first = int(info["output size"]), info["jump"], info["first centre"]
    if size <= 16:  # more would hide the image and a small field
        centres = first + jump * np.arange(size)
        xs, ys = np.meshgrid(centres, centres)
        ax.scatter(xs.ravel(), ys.ravel(), s=6, color="white", edgecolors="0.2", linewidths=0.4,
                   alpha=0.7, label="unit centres")  # fmt: skip
    x0, y0, x1, y1 = clip_field(box, height, width)
    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, color="tab:orange", alpha=0.3, lw=0,
                               label="inside the image"))  # fmt: skip
    x0, y0, x1, y1 = box
    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="tab:red", lw=1.5,
                               ls="--", label="receptive field"))  # fmt: skip
    ax.plot(
        (x0 + x1) / 2, (y0 + y1) / 2, "o", color="tab:red", mec="white", ms=6, label="unit centre"
    )
    margin = 0.03 * max(height, width)
    ax.set_xlim(min(0, x0) - margin, max(width, x1) + margin)
    ax.set_ylim(max(height, y1) + margin, min(0, y0) - margin)  # y down, as in the image
    ax.set_title(
        f"{label}: unit ({row}, {col}) of {size}x{size}, receptive field "
        f"{info['receptive field']:g} px, jump {jump:g} px",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=4, fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------- object-part attention (lab 05)


class AttentionView(NamedTuple):
    """What `plot_attention` draws for one image; a field left None shows "not computed yet".

    Boxes are float x1, y1, x2, y2 in pixels of the image (x2, y2 exclusive), as tensors on the
    CPU or numpy arrays.

    Fields:
        image: (3, H, W) ImageNet-normalised float tensor (a bird dataset's image), (3, H, W)
            uint8 tensor, (H, W, 3) uint8 or [0, 1] float array, or one channel ((1, H, W)
            tensor, (H, W) array), shown in grey.
        proposals: (P, 4) candidate patches, best first: the first `max_proposals` are drawn.
        kept: (K, 4) the patches the CNN filter kept.
        saliency: (H, W) map in [0, 1] (a class activation map, say), the image's size.
        object_box: (4,) the box found from the saliency; true_box: (4,) the annotated box.
        iou: IoU of the two boxes; None computes it from them.
        parts: (n, 4) the chosen part patches; groups: (n,) int, each part's group.
        true_parts: (15, 3) the annotated part keypoints x, y, visible (1 or 0).
        label, predicted: the true and the predicted class name ("017.Cardinal" or "Cardinal").
        saliency_name: what the saliency map is, for its panel's title.
    Used in: 05_opam (`labkit.widgets.attention_viewer` browses them).
    """

    image: torch.Tensor | np.ndarray
    proposals: torch.Tensor | np.ndarray | None = None
    kept: torch.Tensor | np.ndarray | None = None
    saliency: torch.Tensor | np.ndarray | None = None
    object_box: torch.Tensor | np.ndarray | None = None
    true_box: torch.Tensor | np.ndarray | None = None
    iou: float | None = None
    parts: torch.Tensor | np.ndarray | None = None
    groups: torch.Tensor | np.ndarray | None = None
    true_parts: torch.Tensor | np.ndarray | None = None
    label: str | None = None
    predicted: str | None = None
    saliency_name: str = "class activation map"


_KEPT, _FOUND, _TRUE = "gold", "deepskyblue", "red"  # kept patches, object box found, true box


def _numbers(value, name: str, shape: tuple[int | None, ...], what: str) -> np.ndarray | None:
    """Field `name` as a float64 array of `shape` (None: any length), or None if not given."""
    if value is None:
        return None
    array = np.asarray(
        value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64
    )
    if array.ndim != len(shape) or any(
        n not in (None, m) for n, m in zip(shape, array.shape, strict=True)
    ):
        want = ", ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(
            f"AttentionView.{name} must be ({want}{',' * (len(shape) == 1)}) "
            f"{what}, got shape {array.shape}"
        )
    return array


def _attention_picture(image) -> np.ndarray:
    """The image to show: (H, W, 3), or (H, W) for a one-channel image (drawn in grey)."""
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] not in (1, 3):
        raise ValueError(
            f"AttentionView.image must be (3, H, W) or (1, H, W), got {tuple(image.shape)}"
        )
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] == 1:
        image = image[0].detach().cpu().numpy()
    elif isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return _picture(image)


def _attention_arrays(view: AttentionView) -> dict:
    """The view's image and fields as numpy arrays, every shape checked (ValueError)."""
    if not isinstance(view, AttentionView):
        raise TypeError(f"need a labkit.plots.AttentionView, got {type(view).__name__}")
    picture = _attention_picture(view.image)
    height, width = picture.shape[:2]
    box, boxes = "(box x1, y1, x2, y2)", "(boxes x1, y1, x2, y2)"
    arrays = {
        "picture": picture,
        "proposals": _numbers(view.proposals, "proposals", (None, 4), boxes),
        "kept": _numbers(view.kept, "kept", (None, 4), boxes),
        "saliency": _numbers(view.saliency, "saliency", (height, width), "(the image's H, W)"),
        "object_box": _numbers(view.object_box, "object_box", (4,), box),
        "true_box": _numbers(view.true_box, "true_box", (4,), box),
        "parts": _numbers(view.parts, "parts", (None, 4), boxes),
        "true_parts": _numbers(view.true_parts, "true_parts", (None, 3), "(x, y, visible)"),
    }
    parts = arrays["parts"]
    count = None if parts is None else len(parts)
    groups = _numbers(view.groups, "groups", (count,), "(one int per part)")
    if groups is not None and parts is None:
        raise ValueError("AttentionView.groups was given without parts: give both or neither")
    if groups is not None and np.any(groups != np.round(groups)):
        raise ValueError(f"AttentionView.groups must be whole numbers, got {groups.tolist()}")
    arrays["groups"] = None if groups is None else groups.astype(int)
    arrays["saliency_name"] = str(view.saliency_name)
    return arrays


def _box_iou(found: np.ndarray | None, true: np.ndarray | None) -> float | None:
    """IoU of two boxes (4,), x2 and y2 exclusive; None if either is missing."""
    if found is None or true is None:
        return None
    from torchvision.ops import box_iou

    return float(box_iou(torch.tensor(found[None]), torch.tensor(true[None]))[0, 0])


def _attention_iou(view: AttentionView) -> float | None:
    """The view's IoU, else the IoU of its two boxes, else None."""
    if view.iou is not None:
        return float(view.iou)
    found = _numbers(view.object_box, "object_box", (4,), "(box x1, y1, x2, y2)")
    return _box_iou(found, _numbers(view.true_box, "true_box", (4,), "(box x1, y1, x2, y2)"))


def _class_name(name: str) -> str:
    """CUB's "017.Cardinal" or "Black_footed_Albatross" as "Cardinal", "Black footed Albatross"."""
    number, dot, rest = str(name).partition(".")
    return (rest if dot and number.isdigit() else str(name)).replace("_", " ")


def _base_panel(ax: Axes, picture: np.ndarray, title: str) -> None:
    height, width = picture.shape[:2]
    grey = {"cmap": "gray"} if picture.ndim == 2 else {}
    if picture.ndim == 2 and picture.dtype == np.uint8:
        grey |= {"vmin": 0, "vmax": 255}
    ax.imshow(picture, extent=(0, width, height, 0), **grey)  # pixel i covers [i, i + 1)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _draw_boxes(ax: Axes, boxes: np.ndarray, color, gid: str, **style) -> Patch:
    """One unfilled rectangle per box (gid names the kind); returns a legend handle."""
    for x1, y1, x2, y2 in boxes:
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, gid=gid, **style)
        )
    return Patch(fill=False, edgecolor=color, **style)


def _not_computed(ax: Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"{what}\nnot computed yet",
        ha="center",
        va="center",
        fontsize=9,
        transform=ax.transAxes,
        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85},
    )


def _legend_below(ax: Axes, handles: list, labels: list[str]) -> None:
    """Below the panel, so that it never hides the bird."""
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.01),
            ncol=min(len(handles), 3),
            fontsize=8,
            frameon=False,
            handlelength=1.5,
            columnspacing=1.0,
        )


def _patches_panel(ax: Axes, a: dict, max_proposals: int) -> None:
    proposals, kept = a["proposals"], a["kept"]
    handles, labels = [], []
    if proposals is None:
        candidates = "candidates not computed yet"
    else:
        shown = proposals[:max_proposals]
        handles.append(_draw_boxes(ax, shown, "0.45", "proposal", lw=0.6))
        some = "" if len(shown) == len(proposals) else f" (first {len(shown)})"
        labels.append(f"candidates{some}")
        candidates = f"{len(proposals)} candidates"
    if kept is not None:
        handles.append(_draw_boxes(ax, kept, _KEPT, "kept", lw=1.5))
        labels.append("kept")
    kept_text = "kept not computed yet" if kept is None else f"{len(kept)} kept"
    if proposals is None and kept is None:  # the box in the middle says it
        candidates, kept_text = "candidates", "kept"
    _base_panel(ax, a["picture"], f"patches\n{candidates}, {kept_text}")
    if proposals is None and kept is None:
        _not_computed(ax, "patches")
    _legend_below(ax, handles, labels)


def _saliency_panel(ax: Axes, a: dict) -> None:
    _base_panel(ax, a["picture"], f"saliency\n{a['saliency_name']}")
    height, width = a["picture"].shape[:2]
    if a["saliency"] is None:
        _not_computed(ax, "saliency")
    else:
        ax.imshow(
            a["saliency"],
            extent=(0, width, height, 0),
            cmap="jet",
            vmin=0,
            vmax=1,
            alpha=0.5,
            interpolation="bilinear",
        )


def _object_panel(ax: Axes, a: dict, iou: float | None) -> None:
    found, true = a["object_box"], a["true_box"]
    handles, labels = [], []
    if true is not None:
        handles.append(_draw_boxes(ax, true[None], _TRUE, "true box", lw=1.5))
        labels.append("true box")
    if found is not None:
        handles.append(_draw_boxes(ax, found[None], _FOUND, "object box", lw=1.5, ls="--"))
        labels.append("found")
    _base_panel(
        ax,
        a["picture"],
        "object box\n" + ("IoU not computed yet" if iou is None else f"IoU {iou:.2f}"),
    )
    if found is None and true is None:
        _not_computed(ax, "object box")
    _legend_below(ax, handles, labels)


def _parts_panel(ax: Axes, a: dict) -> None:
    parts, groups, true_parts = a["parts"], a["groups"], a["true_parts"]
    handles, labels = [], []
    if parts is None:
        title = "parts not computed yet"
    else:
        ids = np.zeros(len(parts), dtype=int) if groups is None else groups
        for g in np.unique(ids):
            handles.append(_draw_boxes(ax, parts[ids == g], f"C{g % 10}", f"group {g}", lw=1.5))
            labels.append("part" if groups is None else f"group {g}")
        grouped = "" if groups is None else f" in {len(np.unique(ids))} groups"
        title = f"{len(parts)} parts{grouped}"
    if true_parts is not None:
        seen = true_parts[:, 2] > 0
        handles.append(
            ax.scatter(
                true_parts[seen, 0],
                true_parts[seen, 1],
                s=10,
                c="white",
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
            )
        )
        labels.append("true parts")
    _base_panel(ax, a["picture"], f"parts\n{title}")
    if parts is None and true_parts is None:
        _not_computed(ax, "parts")
    _legend_below(ax, handles, labels)


def plot_attention(
    view: AttentionView, *, axes: Sequence[Axes] | None = None, max_proposals: int = 50
) -> Figure:
    """One image through OPAM, in four panels: (a) candidate patches (grey) and the patches the
    filter kept, (b) the saliency map over the image, (c) the object box found from it against
    the true box, with their IoU, (d) the chosen parts coloured by group and the true visible
    part keypoints. A panel whose data is None says "not computed yet"; legends sit below the
    panels, and the figure's title gives the true and the predicted class.

    Args:
        view: the image and what was computed for it (`AttentionView`).
        axes: four axes to draw into; default a new 1x4 figure.
        max_proposals: the most candidates drawn (the first ones); the title counts them all.
    Raises:
        ValueError: a field of the wrong shape, or not four axes.
    Used in: 05_opam (`labkit.widgets.attention_viewer` shows it).
    """
    if not isinstance(max_proposals, int) or max_proposals < 0:
        raise ValueError(f"max_proposals must be an int >= 0, got {max_proposals!r}")
    if axes is not None and len(axes) != 4:
        raise ValueError(f"plot_attention draws four panels: pass four axes, got {len(axes)}")
    arrays = _attention_arrays(view)  # before any figure exists: a refusal leaks none
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(12, 4.2), layout="constrained")
    else:
        fig = axes[0].get_figure()
    _patches_panel(axes[0], arrays, max_proposals)
    _saliency_panel(axes[1], arrays)
    _object_panel(axes[2], arrays, _attention_iou(view))
    _parts_panel(axes[3], arrays)
    names = []
    if view.label is not None:
        names.append(f"true: {_class_name(view.label)}")
    if view.predicted is not None:
        right = _class_name(view.predicted) == _class_name(view.label)
        verdict = "" if view.label is None else (" (right)" if right else " (wrong)")
        names.append(f"predicted: {_class_name(view.predicted)}{verdict}")
    if names:
        joined = "    ".join(names)
        fig.suptitle(joined if len(joined) <= 120 else "\n".join(names), fontsize=10)
    return fig
