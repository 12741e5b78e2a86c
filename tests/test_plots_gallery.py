"""Tests for the error gallery and embedding plot in labkit.plots (Agg backend, no window)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from error_answers import answered_error_table
from PIL import Image

from labkit.data.tensor_dataset import TensorImageDataset
from labkit.plots import (
    plot_distance_histograms,
    plot_embedding_2d,
    plot_error_gallery,
    plot_error_row,
    save_error_gallery,
)

matplotlib.use("Agg")
NAMES = ("zero", "one", "two")


@pytest.fixture(autouse=True)
def _no_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plot functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


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


def test_embedding_2d_legend_has_one_entry_per_class():
    g = torch.Generator().manual_seed(0)
    points, labels = torch.randn(30, 2, generator=g), torch.arange(30) % 3
    fig = plot_embedding_2d(points, labels, NAMES, title="embedding")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == list(NAMES)
    fig2, ax = plt.subplots()
    assert plot_embedding_2d(points.numpy(), labels, ax=ax) is fig2


def test_distance_histograms_one_panel_per_stage_with_the_violating_fraction():
    ap = torch.tensor([1.0, 1.0, 3.0, 1.0])
    an = torch.tensor([4.0, 2.0, 1.0, 3.5])  # gaps 3, 1, -2, 2.5: two inside margin 2
    fig = plot_distance_histograms({"before": (ap, an), "after": (ap, an + 5)}, margin=2.0)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "before\n50% of triplets violate the margin 2"
    assert fig.axes[1].get_title().endswith("0% of triplets violate the margin 2")
    with pytest.raises(ValueError, match="no distances"):
        plot_distance_histograms({}, margin=2.0)
