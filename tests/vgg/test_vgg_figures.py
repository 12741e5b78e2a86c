"""The receptive-field figure: the rectangle drawn is `unit_field`'s box, on any image type."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from labkit.vgg.figures import plot_receptive_field
from labkit.vgg.receptive_field import clip_field, receptive_field_table, unit_field

matplotlib.use("Agg")
SIZE = 20


@pytest.fixture(scope="module")
def table():
    chain = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2),
    )  # fmt: skip
    return receptive_field_table(chain, SIZE)  # last layer 5 x 5, field 10, jump 4


def _rectangle(ax, label: str) -> tuple[tuple[float, float], float, float]:
    (patch,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label() == label]
    return tuple(map(float, patch.get_xy())), patch.get_width(), patch.get_height()


def _image() -> torch.Tensor:
    return torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator())


def test_the_rectangle_is_the_units_box_and_the_title_names_it(table) -> None:
    fig = plot_receptive_field(_image(), table, "4", 4, 0)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    x0, y0, x1, y1 = unit_field(table, "4", 4, 0)  # (-3, 13, 7, 23): past the left and bottom
    assert _rectangle(ax, "receptive field") == ((x0, y0), x1 - x0, y1 - y0)
    v0, w0, v1, w1 = clip_field((x0, y0, x1, y1), SIZE, SIZE)
    assert _rectangle(ax, "inside the image") == ((v0, w0), v1 - v0, w1 - w0) != ((x0, y0), 10, 10)
    assert ax.get_title() == "4: unit (4, 0) of 5x5, receptive field 10 px, jump 4 px"
    (centre,) = [line for line in ax.lines if line.get_label() == "unit centre"]
    assert (centre.get_xdata()[0], centre.get_ydata()[0]) == ((x0 + x1) / 2, (y0 + y1) / 2)
    assert ax.get_xlim()[0] < x0 and ax.get_ylim()[0] > y1  # the padding part is in view
    lattice = ax.collections[0].get_offsets()
    assert len(lattice) == 25 and sorted(set(lattice[:, 0])) == [2, 6, 10, 14, 18]
    (shown,) = ax.images
    assert tuple(shown.get_extent()) == (0, SIZE, SIZE, 0)  # pixel i covers [i, i + 1)
    plt.close(fig)


def test_every_image_type_draws_the_same_pixels(table) -> None:
    image = _image()
    array = image.permute(1, 2, 0).numpy()  # (H, W, 3) uint8
    normalised = (image / 255 - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(3, 1, 1)
    drawn = []
    for given in (image, image[None], array, Image.fromarray(array), image / 255, normalised):
        fig = plot_receptive_field(given, table, 0, 0, 0)  # layer by position
        drawn.append(np.asarray(fig.axes[0].images[0].get_array(), dtype=np.float64))
        assert fig.axes[0].get_title().startswith("0: unit (0, 0) of 20x20, receptive field 3 px")
        plt.close(fig)
    for pixels in drawn[4:]:  # floats in [0, 1]
        np.testing.assert_allclose(pixels * 255, drawn[0], atol=1e-3)
    assert all(np.array_equal(pixels, drawn[0]) for pixels in drawn[1:4])


def test_it_draws_on_a_given_axes(table) -> None:
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_receptive_field(_image(), table, "2", 1, 1, ax=right) is fig
    assert not left.patches and right.get_title().startswith("2: unit (1, 1) of 10x10")
    plt.close(fig)


def test_an_image_of_another_size_or_a_bad_unit_is_refused(table) -> None:
    open_figures = plt.get_fignums()
    with pytest.raises(ValueError, match=r"does not fit a 24 x 24 image: .*\(model, 24\)"):
        plot_receptive_field(torch.zeros(3, 24, 24, dtype=torch.uint8), table, "4", 0, 0)
    with pytest.raises(ValueError, match="square inputs but the image is 20 x 24"):
        plot_receptive_field(np.zeros((20, 24, 3)), table, "4", 0, 0)
    with pytest.raises(ValueError, match="need an image tensor"):
        plot_receptive_field(torch.zeros(1, SIZE, SIZE), table, "4", 0, 0)
    with pytest.raises(ValueError, match=r"unit \(5, 0\) is outside layer 4's 5 x 5 output"):
        plot_receptive_field(_image(), table, "4", 5, 0)
    assert plt.get_fignums() == open_figures  # a refusal leaves no empty figure behind
