"""Lab 03's embedding scatter and distance histograms (Agg backend, no window)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from labkit.triplets.figures import plot_distance_histograms, plot_embedding_2d

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("no_plt_show")
NAMES = ("zero", "one", "two")


def test_embedding_2d_legend_has_one_entry_per_class():
    g = torch.Generator().manual_seed(0)
    points, labels = torch.randn(30, 2, generator=g), torch.arange(30) % 3
    fig = plot_embedding_2d(points, labels, NAMES, title="embedding")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == list(NAMES)
    fig2, ax = plt.subplots()
    assert plot_embedding_2d(points.numpy(), labels, ax=ax) is fig2


def test_embedding_2d_of_a_single_class():
    points = torch.randn(12, 2, generator=torch.Generator().manual_seed(1))
    fig = plot_embedding_2d(points, torch.full((12,), 2), NAMES)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["two"]
    assert len(fig.axes[0].collections[0].get_offsets()) == 12


def test_distance_histograms_one_panel_per_stage_with_the_violating_fraction():
    ap = torch.tensor([1.0, 1.0, 3.0, 1.0])
    an = torch.tensor([4.0, 2.0, 1.0, 3.5])  # gaps 3, 1, -2, 2.5: two inside margin 2
    fig = plot_distance_histograms({"before": (ap, an), "after": (ap, an + 5)}, margin=2.0)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "before\n50% of triplets violate the margin 2"
    assert fig.axes[1].get_title().endswith("0% of triplets violate the margin 2")
    with pytest.raises(ValueError, match="no distances"):
        plot_distance_histograms({}, margin=2.0)
