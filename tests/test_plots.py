"""Tests for labkit.plots.plot_history (Agg backend, no window)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from labkit.plots import plot_history, plot_image_grid
from labkit.training.loop import HISTORY_COLUMNS

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("no_plt_show")


def _history(num_epochs: int = 3, val: bool = True, acc: bool = True) -> pd.DataFrame:
    rows = []
    for e in range(1, num_epochs + 1):
        nan = math.nan
        rows.append(
            {
                "epoch": e,
                "train_loss": 1 / e,
                "train_acc": 0.5 + e / 10 if acc else nan,
                "val_loss": 1.2 / e if val else nan,
                "val_acc": 0.4 + e / 10 if val and acc else nan,
                "lr": 0.1,
                "seconds": 1.0,
            }
        )
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def test_one_history_two_axes_train_solid_val_dashed():
    fig = plot_history(_history(), title="run")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [line.get_linestyle() for line in loss_ax.lines] == ["-", "--"]
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(acc_ax.lines[1].get_ydata()) == pytest.approx([0.5, 0.6, 0.7])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "val"]
    assert fig.get_suptitle() == "run"


def test_several_histories_one_colour_each():
    fig = plot_history({"vgg": _history(), "densenet": _history(5)})
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(acc_ax.lines) == 4
    colours = [line.get_color() for line in loss_ax.lines]
    assert colours[0] == colours[1] != colours[2] == colours[3]
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()][2] == "densenet train"


def test_missing_val_and_acc_draw_fewer_lines():
    fig = plot_history(_history(val=False, acc=False))
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 1 and len(acc_ax.lines) == 0


def test_draws_into_given_axes_and_rejects_other_tables():
    fig, axes = plt.subplots(1, 2)
    assert plot_history(_history(), axes=axes) is fig
    with pytest.raises(ValueError, match="labkit.training.loop.fit"):
        plot_history(pd.DataFrame({"epoch": [1]}))


def test_image_grid_shows_every_image_with_its_class_name() -> None:
    images = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    images[3] = 255
    fig = plot_image_grid(images, torch.arange(10), [f"d{i}" for i in range(10)], ncols=4)
    axes = fig.axes
    assert len(axes) == 12  # 3 rows of 4, the last two empty
    shown = [ax for ax in axes if ax.images]
    assert [ax.get_title() for ax in shown] == [f"d{i}" for i in range(10)]
    assert shown[3].images[0].get_array().max() == 1.0 and shown[0].images[0].get_array().max() == 0
    plt.close(fig)


def test_image_grid_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="no images"):
        plot_image_grid(torch.zeros(0, 3, 8, 8))


def test_test_data_is_labelled_test_and_accuracy_named():
    fig = plot_history({"dense": _history()}, eval_name="test", accuracy="triplet accuracy")
    loss_ax, acc_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["dense train", "dense test"]
    assert acc_ax.get_ylabel() == "triplet accuracy"


def test_history_with_test_columns_is_drawn_as_test():
    history = _history().rename(columns={"val_loss": "test_loss", "val_acc": "test_acc"})
    loss_ax, _ = plot_history(history).axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "test"]
    assert list(loss_ax.lines[1].get_ydata()) == list(history["test_loss"])


def test_image_grid_column_titles_head_the_first_row():
    images = torch.zeros(6, 3, 4, 4, dtype=torch.uint8)
    fig = plot_image_grid(
        images,
        [0, 1, 2, 0, 1, 2],
        ["a", "b", "c"],
        ncols=3,
        column_titles=("anchor", "positive", "negative"),
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["anchor\na", "positive\nb", "negative\nc"] and titles[3] == "a"
    with pytest.raises(ValueError, match="one heading per column"):
        plot_image_grid(images, ncols=3, column_titles=("anchor",))
