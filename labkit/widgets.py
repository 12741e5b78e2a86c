"""ipywidgets explorers: thin shells over labkit's pure functions; ipywidgets is imported lazily.

Everything a widget shows can be drawn in a plain cell: the error browser shows
`render_error(errors, i, ...)`, the same figure as one row of `plot_error_gallery`; the
receptive-field explorer shows `render_receptive_field(image, table, layer, row, col)`, the
caption `unit_caption(...)` and the layer's row `table.loc[[layer]]`; the attention viewer shows
`render_attention(view)` and the caption `attention_caption(view, i, count)`.

Used in: 01_vgg_receptive_fields, 03_facenet_knn, 05_opam.
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from labkit.plots import (
    AttentionView,
    _attention_iou,
    _class_name,
    plot_attention,
    plot_error_row,
    plot_receptive_field,
)
from labkit.vgg.receptive_field import clip_field, unit_field

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "attention_caption",
    "attention_viewer",
    "error_browser",
    "receptive_field_explorer",
    "render_attention",
    "render_error",
    "render_receptive_field",
    "unit_caption",
]


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


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes, cropped to what it draws (titles and legends outside the axes
    included, as Jupyter's inline figures are)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


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
            rendered[i] = _png(render_error(errors, i, test_images, train_images, class_names))
        image.value = rendered[i]
        caption.value = _caption(errors, i, class_names)

    def step(delta: int) -> None:
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    slider.observe(show, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(1))
    show()
    return widgets.VBox([widgets.HBox([previous, slider, following]), caption, image])


# ---------------------------------------------------------------- receptive-field explorer (lab 01)


def render_receptive_field(
    image: torch.Tensor | Any, table: pd.DataFrame, layer: str | int, row: int, col: int
) -> Figure:
    """Unit (row, col) of `layer` on the image: what `receptive_field_explorer` shows.

    Like `labkit.plots.plot_receptive_field`, in a figure not registered with pyplot: browsing
    leaks no figures and shows none twice; in a notebook, a bare `fig` shows it.

    Used in: 01_vgg_receptive_fields.
    """
    fig = Figure(figsize=(5.5, 5.6), layout="constrained")
    plot_receptive_field(image, table, layer, row, col, ax=fig.subplots())
    return fig


def _image_size(image: torch.Tensor | Any) -> tuple[int, int]:
    """(height, width) of a (3, H, W) tensor, a PIL image or an (H, W, 3) array."""
    if isinstance(image, torch.Tensor):
        return int(image.shape[-2]), int(image.shape[-1])
    if hasattr(image, "convert"):  # PIL: size is (width, height)
        return int(image.size[1]), int(image.size[0])
    return int(image.shape[0]), int(image.shape[1])


def unit_caption(table: pd.DataFrame, layer: str | int, row: int, col: int, height: int,
                 width: int) -> str:  # fmt: skip
    """One line (HTML) on unit (row, col) of `layer` for a height x width image: its centre,
    its field and how much of the field lies inside the image (the rest is zero padding)."""
    box = unit_field(table, layer, row, col)
    x0, y0, x1, y1 = box
    v0, w0, v1, w1 = clip_field(box, height, width)
    inside = (v1 - v0) * (w1 - w0) / ((x1 - x0) * (y1 - y0))
    return (
        f"unit ({row}, {col}) of layer <b>{layer}</b>: centre at x {(x0 + x1) / 2:g}, "
        f"y {(y0 + y1) / 2:g}; field x {x0:g} to {x1:g}, y {y0:g} to {y1:g} px; "
        f"{inside:.0%} of it inside the image"
    )


def receptive_field_explorer(
    image: torch.Tensor | Any, table: pd.DataFrame, layers: Sequence[str] | None = None
) -> ipywidgets.Widget:
    """Pick a layer and one of its units; see the input pixels the unit sees on the image.

    A dropdown of layers ("layer"), sliders "row" and "col" (made anew for each layer, their
    maxima its output size less 1; a value past the new maximum is clamped to it), a caption
    (`unit_caption`), the figure (`render_receptive_field`) and the layer's row of the table.
    It opens on the last layer's centre unit.

    Args:
        image: (3, H, W) tensor, PIL image or (H, W, 3) array of the table's input size.
        table: from `labkit.vgg.receptive_field.receptive_field_table`.
        layers: row labels the dropdown offers; default the convolutions and poolings (a ReLU
            or batch-norm row repeats the geometry of the layer before it).
    Raises:
        ValueError: a table made for another input size, or an unknown layer in `layers`.
    Used in: 01_vgg_receptive_fields.
    """
    import ipywidgets as widgets

    height, width = _image_size(image)
    if layers is None:
        layers = [label for label, kernel in table["kernel"].items() if pd.notna(kernel)]
        layers = layers or list(table.index)  # a table of geometry-free layers only
    unknown = [label for label in layers if label not in table.index]
    if unknown:
        raise ValueError(f"layers {unknown} are not rows of the table ({list(table.index)})")

    def size(label: str) -> int:
        return int(table.loc[label, "output size"])

    last = layers[-1]
    options = [(f"{label} ({table.loc[label, 'kind']}, {size(label)}x{size(label)})", label)
               for label in layers]  # fmt: skip
    layer = widgets.Dropdown(options=options, value=last, description="layer")
    caption, details = widgets.HTML(), widgets.HTML()
    picture = widgets.Image(format="png", layout=widgets.Layout(width="520px"))  # not stretched

    @functools.lru_cache(maxsize=256)  # each unit drawn once while browsing
    def png(label: str, r: int, c: int) -> bytes:
        return _png(render_receptive_field(image, table, label, r, c))

    def show(change: dict | None = None) -> None:
        row, col = controls.children[1:]
        picture.value = png(layer.value, row.value, col.value)
        caption.value = unit_caption(table, layer.value, row.value, col.value, height, width)
        details.value = (
            table.loc[[layer.value]]
            .reset_index()
            .to_html(index=False, na_rep="", float_format="{:g}".format)
        )

    def slider(name: str, value: int) -> ipywidgets.IntSlider:
        # a new slider per layer: the browser's slider keeps the range it was made with for its
        # Home and End keys, so changing `max` would leave End stopping at the old maximum
        top = size(layer.value) - 1
        made = widgets.IntSlider(value=min(value, top), min=0, max=top, description=name,
                                 continuous_update=False)  # fmt: skip
        made.observe(show, names="value")
        return made

    def new_layer(change: dict) -> None:
        row, col = controls.children[1:]
        controls.children = (layer, slider("row", row.value), slider("col", col.value))
        show()

    controls = widgets.HBox([layer])
    middle = size(last) // 2
    controls.children = (layer, slider("row", middle), slider("col", middle))
    show()  # raises here for a table of another input size
    layer.observe(new_layer, names="value")
    explorer = widgets.VBox([controls, caption, picture, details],
                            layout=widgets.Layout(align_items="flex-start"))  # fmt: skip
    explorer.add_class("labkit-receptive-field")  # for browser tests
    return explorer


# ---------------------------------------------------------------- attention viewer (lab 05)


def render_attention(view: AttentionView) -> Figure:
    """One image's OPAM panels: what `attention_viewer` shows.

    Like `labkit.plots.plot_attention`, in a figure not registered with pyplot: browsing leaks
    no figures and shows none twice; in a notebook, a bare `fig` shows it.

    Used in: 05_opam.
    """
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    plot_attention(view, axes=fig.subplots(1, 4))
    return fig


def attention_caption(view: AttentionView, i: int, count: int) -> str:
    """One line (HTML) on view `i` of `count`: the true and the predicted class, and the IoU of
    the object box found with the true box (as the figure's title gives it)."""
    true = "?" if view.label is None else html.escape(_class_name(view.label))
    pred = "?" if view.predicted is None else html.escape(_class_name(view.predicted))
    verdict = ""
    if view.label is not None and view.predicted is not None:
        verdict = " (right)" if true == pred else " (wrong)"
    iou = _attention_iou(view)
    iou_text = "not computed yet" if iou is None else f"{iou:.2f}"
    return (
        f"image {i} of {count} (0 to {count - 1}): true <b>{true}</b>, "
        f"predicted <b>{pred}</b>{verdict}; IoU {iou_text}"
    )


def attention_viewer(
    views: Sequence[AttentionView] | Callable[[int], AttentionView],
    *,
    count: int | None = None,
    captions: Sequence[str] | None = None,
    start: int = 0,
) -> ipywidgets.Widget:
    """Browse images' OPAM panels one at a time (slider "image", Previous / Next buttons; the
    slider takes the arrow keys once focused).

    Args:
        views: AttentionViews, or a function of the index (0 to count - 1) that makes one,
            called when that image is first shown; each image is drawn once.
        count: how many images the function makes; with a sequence, its length.
        captions: one more line of text per image (e.g. its file name), below the caption.
        start: the index shown first.
    Returns:
        a VBox of the controls, the caption (`attention_caption`) and the figure
        (`render_attention`).
    Raises:
        ValueError: no views, a function without `count`, `captions` of another length or
            `start` out of range.
        TypeError: a single AttentionView (pass a list), or a view that is not one.
    Used in: 05_opam.
    """
    import ipywidgets as widgets

    if isinstance(views, AttentionView):
        raise TypeError("attention_viewer needs a list of views: pass [view] for one image")
    if callable(views):
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError(
                "attention_viewer got a function of the index: pass count=, the "
                f"number of images it makes (got count={count!r})"
            )
        get = views
    else:
        if count is not None and count != len(views):
            raise ValueError(f"count={count} but views holds {len(views)}: leave count out")
        count, get = len(views), views.__getitem__
    if count < 1:
        raise ValueError("attention_viewer got no views: pass at least one AttentionView")
    if captions is not None and len(captions) != count:
        raise ValueError(f"captions needs one line per image ({count}), got {len(captions)}")
    if not isinstance(start, int) or not 0 <= start < count:
        raise ValueError(f"start={start!r} is out of range: the images are 0 to {count - 1}")

    @functools.lru_cache(maxsize=64)  # each image drawn once while browsing
    def drawn(i: int) -> tuple[bytes, str]:
        view = get(i)
        if not isinstance(view, AttentionView):
            raise TypeError(f"view {i} is a {type(view).__name__}, not a labkit AttentionView")
        line = attention_caption(view, i, count)
        if captions is not None:
            line += "<br>" + html.escape(str(captions[i]))
        return _png(render_attention(view)), line

    slider = widgets.IntSlider(
        value=start, min=0, max=count - 1, description="image", continuous_update=False
    )
    previous = widgets.Button(description="Previous", icon="arrow-left")
    following = widgets.Button(description="Next", icon="arrow-right")
    caption = widgets.HTML()
    picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))

    def show(change: dict | None = None) -> None:
        picture.value, caption.value = drawn(slider.value)

    def step(delta: int) -> None:
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    slider.observe(show, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(1))
    show()  # raises here for a bad first view
    viewer = widgets.VBox(
        [widgets.HBox([previous, slider, following]), caption, picture],
        layout=widgets.Layout(align_items="flex-start"),
    )
    viewer.add_class("labkit-attention")  # for browser tests
    return viewer
