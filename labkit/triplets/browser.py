"""Lab 03's error browser: the misclassified test images one at a time (slider, Previous / Next).

A thin shell over `labkit.triplets.gallery`: position `i` shows `render_error(errors, i, ...)`,
the same figure as row `i` of `plot_error_gallery`, so a plain cell draws anything it shows.
ipywidgets is imported only when a browser is built.

Used in: 03_facenet_knn (Question 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from labkit.plots import figure_png
from labkit.triplets.gallery import plot_error_row

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["error_browser", "render_error"]


def render_error(
    errors: pd.DataFrame,
    i: int,
    test_images: torch.Tensor | Any,
    train_images: torch.Tensor | Any,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Error `i` of an `error_table` as a figure: what `error_browser` shows at position `i`.

    Used in: 03_facenet_knn (Question 5).
    """
    return plot_error_row(errors, i, test_images, train_images, class_names)


def _caption(errors: pd.DataFrame, i: int, class_names: Sequence[str] | None) -> str:
    row = errors.iloc[i]
    true = class_names[int(row["true"])] if class_names else row["true_name"]
    pred = class_names[int(row["pred"])] if class_names else row["pred_name"]
    return (
        f"error {i + 1} of {len(errors)}: test image #{int(row['test_index'])}, "
        f"true <b>{true}</b>, predicted <b>{pred}</b>"
    )


def error_browser(
    errors: pd.DataFrame,
    test_images: torch.Tensor | Any,
    train_images: torch.Tensor | Any,
    class_names: Sequence[str] | None = None,
) -> ipywidgets.Widget:
    """Browse misclassified test images one at a time (slider, Previous / Next buttons).

    Args:
        errors: the DataFrame from `labkit.triplets.embeddings.error_table`.
        test_images, train_images: (N, 3, H, W) images, or the TensorImageDatasets.
        class_names: names for the titles; default the table's names.
    Returns:
        a VBox of the controls, a caption and the rendered error (an HTML note if no errors).
    Used in: 03_facenet_knn (Question 5).
    """
    import ipywidgets as widgets

    if len(errors) == 0:
        return widgets.HTML("no errors: every test image was classified correctly")
    # counts from 1, as the caption does ("error 1 of 11"); row = slider.value - 1
    slider = widgets.IntSlider(
        value=1, min=1, max=len(errors), description="error", continuous_update=False
    )
    previous = widgets.Button(description="Previous", icon="arrow-left")
    following = widgets.Button(description="Next", icon="arrow-right")
    caption = widgets.HTML()
    image = widgets.Image(format="png")
    rendered: dict[int, bytes] = {}  # each error is drawn once

    def show(change: dict | None = None) -> None:
        i = slider.value - 1  # the table's row
        if i not in rendered:
            fig = render_error(errors, i, test_images, train_images, class_names)
            rendered[i] = figure_png(fig)
        image.value = rendered[i]
        caption.value = _caption(errors, i, class_names)

    def step(delta: int) -> None:
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    slider.observe(show, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(1))
    show()
    return widgets.VBox([widgets.HBox([previous, slider, following]), caption, image])
