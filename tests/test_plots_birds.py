"""The bird grid: one row per class, every image with its box and visible parts drawn."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from labkit.data import (
    BirdTransform,
    CubDataset,
    SynthBirdsSpec,
    read_cub_index,
    write_synthetic_birds,
)
from labkit.plots import plot_bird_grid

matplotlib.use("Agg")
SPEC = SynthBirdsSpec(num_classes=3, train_per_class=3, test_per_class=1, image_size=48)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    return read_cub_index(write_synthetic_birds(tmp_path_factory.mktemp("b") / "set", SPEC))


def test_one_row_per_class_with_boxes_and_parts(index) -> None:
    dataset = CubDataset(index, "train", BirdTransform(48, 48, False), with_geometry=True)
    fig = plot_bird_grid(dataset, classes=[2, 0], per_class=3)
    axes = fig.axes
    assert len(axes) == 6
    assert all(len(ax.patches) == 1 for ax in axes)  # the box
    visible = int((dataset[6][3][:, 2] > 0).sum())  # class 2's first image
    assert axes[0].collections[0].get_offsets().shape == (visible, 2)
    assert (
        axes[0]
        .get_title(loc="left")
        .startswith(index.class_names[2].split(".")[1][:10].replace("_", " "))
    )
    plt.close(fig)


def test_needs_geometry(index) -> None:
    dataset = CubDataset(index, "train", BirdTransform(48, 48, False))
    with pytest.raises(ValueError, match="with_geometry=True"):
        plot_bird_grid(dataset, classes=[0])


def test_a_class_without_images(index, tmp_path: Path) -> None:
    dataset = CubDataset(index, "train", BirdTransform(48, 48, False), with_geometry=True)
    with pytest.raises(ValueError, match="class 7 has no image"):
        plot_bird_grid(dataset, classes=[7])
