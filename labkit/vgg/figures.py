"""Lab 01's figure: the input pixels one unit of a layer sees, drawn on the image.

The receptive-field explorer (`labkit.vgg.explorer`) browses it; the geometry comes from
`labkit.vgg.receptive_field`.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labkit.plots import display_array
from labkit.vgg.receptive_field import check_input_size, clip_field, unit_field

__all__ = ["plot_receptive_field"]


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
    Used in: 01_vgg_receptive_fields (`labkit.vgg.explorer.receptive_field_explorer` shows it).
    """
    picture = display_array(image)
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
