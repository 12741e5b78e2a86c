"""Lab 01's receptive-field explorer builds and follows its controls, no browser needed."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import labkit.vgg.explorer
from labkit.plots import figure_png
from labkit.vgg.explorer import receptive_field_explorer, render_receptive_field, unit_caption
from labkit.vgg.receptive_field import receptive_field_table

matplotlib.use("Agg")
pytest.importorskip("ipywidgets")


def _receptive_field_case():
    chain = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )  # fmt: skip
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator())
    return image, receptive_field_table(chain, 16)  # 16, 16, 8, 8, 8, 4 units per side


def _explorer_parts(explorer):
    controls, caption, image, details = explorer.children
    layer, row, col = controls.children
    return layer, row, col, caption, image, details


def test_render_receptive_field_is_the_plot_without_pyplot():
    image, table = _receptive_field_case()
    open_figures = plt.get_fignums()
    fig = render_receptive_field(image, table, "5", 1, 2)
    (ax,) = fig.axes
    assert ax.get_title() == "5: unit (1, 2) of 4x4, receptive field 10 px, jump 4 px"
    assert plt.get_fignums() == open_figures  # nothing for pyplot to show twice or to leak


def test_explorer_offers_the_convolutions_and_poolings_with_labelled_controls():
    image, table = _receptive_field_case()
    explorer = receptive_field_explorer(image, table)
    layer, row, col, caption, picture, details = _explorer_parts(explorer)
    assert [label for _, label in layer.options] == ["0", "2", "3", "5"]  # no ReLU rows
    assert layer.options[1][0] == "2 (MaxPool2d, 8x8)"
    assert (layer.description, row.description, col.description) == ("layer", "row", "col")
    # opens on the last layer's centre unit
    assert (layer.value, row.value, col.value, row.max, col.max) == ("5", 2, 2, 3, 3)
    assert bytes(picture.value) == figure_png(render_receptive_field(image, table, "5", 2, 2))
    assert caption.value == unit_caption(table, "5", 2, 2, 16, 16)
    assert "centre at x 10, y 10; field x 5 to 15, y 5 to 15 px; 100% of it inside" in caption.value
    assert "<td>MaxPool2d</td>" in details.value and "<td>10</td>" in details.value
    chosen = receptive_field_explorer(image, table, layers=["1", "3"])
    assert [label for _, label in _explorer_parts(chosen)[0].options] == ["1", "3"]


@pytest.mark.slow
def test_explorer_follows_its_controls(monkeypatch):
    image, table = _receptive_field_case()
    drawn = []

    def counted(*args):
        drawn.append(args[2:])
        return render_receptive_field(*args)

    monkeypatch.setattr(labkit.vgg.explorer, "render_receptive_field", counted)
    explorer = receptive_field_explorer(image, table)
    layer, row, col, caption, picture, details = _explorer_parts(explorer)
    first_png = bytes(picture.value)
    row.value = 3  # as a browser's drag would: the observer redraws
    assert bytes(picture.value) != first_png and caption.value.startswith("unit (3, 2) of layer")
    assert "y 9 to 19 px; 70% of it inside the image" in caption.value  # rows 9 to 15 of 16
    old_row = row
    layer.value = "0"  # 16 x 16 units: new sliders with larger maxima, the values kept
    layer, row, col = _explorer_parts(explorer)[:3]
    assert row is not old_row  # a fresh slider: the browser's End key reaches its maximum
    assert (row.max, col.max, row.value, col.value) == (15, 15, 3, 2)
    assert caption.value.startswith("unit (3, 2) of layer <b>0</b>")
    assert "<td>Conv2d</td>" in details.value and "MaxPool2d" not in details.value
    old_row.value = 1  # the old slider is out of the explorer: it changes nothing
    assert caption.value.startswith("unit (3, 2) of layer <b>0</b>")
    row.value, col.value = 12, 15
    layer.value = "2"  # 8 x 8 units: both values clamped to 7
    layer, row, col = _explorer_parts(explorer)[:3]
    assert (row.max, col.max, row.value, col.value) == (7, 7, 7, 7)
    assert caption.value.startswith("unit (7, 7) of layer <b>2</b>")
    assert bytes(picture.value) == figure_png(render_receptive_field(image, table, "2", 7, 7))
    # one drawing per state shown: none for the sliders the layer change made
    assert drawn == [("5", 2, 2), ("5", 3, 2), ("0", 3, 2), ("0", 12, 2), ("0", 12, 15),
                     ("2", 7, 7)]  # fmt: skip
    layer.value = "5"  # 4 x 4 units: (7, 7) clamped to (3, 3), drawn
    layer, row, col = _explorer_parts(explorer)[:3]
    assert (row.value, col.value) == (3, 3) and drawn[-1] == ("5", 3, 3)
    col.value = 2
    row.value = 2
    assert bytes(picture.value) == first_png  # (5, 3, 2) and (5, 2, 2) came from the cache
    assert len(drawn) == 7


def test_explorer_refuses_an_image_of_another_size_and_unknown_layers():
    image, table = _receptive_field_case()
    with pytest.raises(ValueError, match="does not fit a 20 x 20 image"):
        receptive_field_explorer(torch.zeros(3, 20, 20, dtype=torch.uint8), table)
    with pytest.raises(ValueError, match=r"layers \['conv9'\] are not rows of the table"):
        receptive_field_explorer(image, table, layers=["0", "conv9"])
