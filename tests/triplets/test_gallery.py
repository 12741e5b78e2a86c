"""Lab 03's error gallery: its rows, titles and the PNG files it writes (Agg backend, no window)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from error_answers import answered_error_table
from PIL import Image

from labkit.data.datasets import TensorImageDataset
from labkit.triplets.gallery import plot_error_gallery, plot_error_row, save_error_gallery

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("no_plt_show")
NAMES = ("zero", "one", "two")


def _errors(num_test: int = 12):
    """An error table over tiny random images and embeddings, with some misclassifications."""
    g = torch.Generator().manual_seed(0)
    train_images = torch.randint(0, 256, (15, 3, 8, 8), dtype=torch.uint8, generator=g)
    test_images = torch.randint(0, 256, (num_test, 3, 8, 8), dtype=torch.uint8, generator=g)
    train_labels, test_labels = torch.arange(15) % 3, torch.arange(num_test) % 3
    preds = test_labels.clone()
    preds[::3] = (preds[::3] + 1) % 3  # every third test image is wrong
    test, train = torch.randn(num_test, 4, generator=g), torch.randn(15, 4, generator=g)
    table = answered_error_table(test, test_labels, preds, train, train_labels)
    return table, test_images, train_images


def test_gallery_has_the_two_nearest_and_the_voters_per_row():
    errors, test_images, train_images = _errors()
    fig = plot_error_gallery(errors, test_images, train_images, NAMES)
    assert len(errors) == 4 and len(fig.axes) == (3 + 3) * len(errors)
    assert fig.axes[1].get_title().startswith(f"nearest {NAMES[errors['true'][0]]}")
    first_voter = NAMES[errors["voter_classes"][0][0]]
    assert fig.axes[3].get_title().startswith(f"vote 1: {first_voter}")


def test_gallery_max_rows_notes_how_many_shown():
    errors, test_images, train_images = _errors()
    fig = plot_error_gallery(errors, test_images, train_images, NAMES, max_rows=2)
    assert len(fig.axes) == 12  # two rows of six images
    assert "2 of 4" in fig.get_suptitle()


def test_gallery_without_errors():
    errors, test_images, train_images = _errors()
    fig = plot_error_gallery(errors.iloc[:0], test_images, train_images, NAMES)
    assert "no errors" in fig.axes[0].texts[0].get_text()


def test_gallery_takes_datasets_and_table_names():
    errors, test_images, train_images = _errors()
    test_set = TensorImageDataset(test_images, torch.arange(len(test_images)) % 3)
    train_set = TensorImageDataset(train_images, torch.arange(len(train_images)) % 3)
    fig = plot_error_row(errors, 0, test_set, train_set)
    row = errors.iloc[0]
    assert len(fig.axes) == 6  # test, two nearest, three voters
    assert fig.axes[0].get_title() == f"test #{row.test_index}\n{row.true_name} as {row.pred_name}"


def test_save_error_gallery_writes_one_png_per_error_inside_folder(tmp_path):
    errors, test_images, train_images = _errors()
    folder = tmp_path / "pics" / "errors"
    paths = save_error_gallery(errors, test_images, train_images, NAMES, folder)
    assert len(paths) == len(errors)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.name for p in paths
    )
    assert all(p.parent == folder for p in paths)
    row = errors.iloc[1]
    assert paths[1].name == f"error_001_true_{NAMES[row.true]}_pred_{NAMES[row.pred]}.png"
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > image.height
    assert plt.get_fignums() == []  # the saved figures are not left open in pyplot


def test_save_error_gallery_replaces_an_earlier_gallery_only(tmp_path):
    errors, test_images, train_images = _errors()
    save_error_gallery(errors, test_images, train_images, NAMES, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")  # a student's own file stays
    (tmp_path / "error_analysis.png").write_bytes(b"not a gallery file")
    fewer = errors.iloc[:2]
    paths = save_error_gallery(fewer, test_images, train_images, NAMES, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in paths] + ["error_analysis.png", "notes.txt"]
    )
