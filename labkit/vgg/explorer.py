"""Lab 01's receptive-field explorer: pick a layer and a unit, see the pixels it sees.

A thin shell over `labkit.vgg.figures` and `labkit.vgg.receptive_field`: it shows
`render_receptive_field(image, table, layer, row, col)`, the caption `unit_caption(...)` and the
layer's row `table.loc[[layer]]`, so a plain cell draws anything it shows. ipywidgets is imported
only when an explorer is built.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from labkit.plots import figure_png
from labkit.vgg.figures import plot_receptive_field
from labkit.vgg.receptive_field import clip_field, unit_field

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["receptive_field_explorer", "render_receptive_field", "unit_caption"]


def render_receptive_field(
    image: torch.Tensor | Any, table: pd.DataFrame, layer: str | int, row: int, col: int
) -> Figure:
    """Unit (row, col) of `layer` on the image: what `receptive_field_explorer` shows.

    Like `labkit.vgg.figures.plot_receptive_field`, in a figure not registered with pyplot: browsing
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
        return figure_png(render_receptive_field(image, table, label, r, c))

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
