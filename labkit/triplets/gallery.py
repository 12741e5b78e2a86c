"""Lab 03's error gallery: each misclassified test image beside the nearest training images of
its true and of its predicted class, and the k neighbours that voted.

The table comes from `labkit.triplets.embeddings.error_table`; the browser
(`labkit.triplets.browser.error_browser`) shows one row at a time.

Used in: 03_facenet_knn (Question 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labkit.data.transforms import to_display
from labkit.triplets.embeddings import ERROR_COLUMNS

__all__ = ["plot_error_gallery", "plot_error_row", "save_error_gallery"]


def _stored_images(images: torch.Tensor | object) -> torch.Tensor:
    """The image tensor (N, 3, H, W) of a TensorImageDataset, or `images` itself."""
    return getattr(images, "images", images)


def _check_error_table(errors: pd.DataFrame) -> None:
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
