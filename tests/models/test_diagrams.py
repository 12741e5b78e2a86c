"""The block diagrams of lab 02: channel counts computed from the arguments, bad input refused."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest

from labkit.models.diagrams import draw_dense_block, draw_resnext_forms

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_dense_block_counts_channels_layer_by_layer():
    texts = _texts(draw_dense_block(num_layers=3, growth_rate=12, in_channels=24))
    concats = [t for t in texts if t.startswith("concat")]
    assert concats == ["concat\n36 ch", "concat\n48 ch", "concat\n60 ch"]
    assert "transition\nBN-ReLU-1x1 (30)\navg pool 2x2" in texts
    assert sum(t.startswith("layer ") for t in texts) == 3
    assert any("BN-ReLU-1x1 (48)" in t for t in texts)  # the 4k bottleneck


def test_resnext_forms_are_three_panels_with_the_blocks_widths():
    fig = draw_resnext_forms(cardinality=4, bottleneck_width=4, in_channels=64)
    assert [ax.get_title() for ax in fig.axes] == [
        "(a) separate paths, added",
        "(b) paths concatenated, one 1x1",
        "(c) one grouped convolution",
    ]
    texts = _texts(fig)
    assert "3x3 conv, 16 -> 16\ngroups = 4" in texts  # C d = 16 channels in 4 groups
    assert "concatenate, 16 ch" in texts and "+ (sum)" in texts
    assert texts.count("+ shortcut, ReLU: 32 ch") == 3  # 2 C d at the output, every form


@pytest.mark.parametrize(
    ("draw", "kwargs", "name"),
    [
        (draw_dense_block, {"num_layers": 0}, "num_layers"),
        (draw_dense_block, {"growth_rate": 2.5}, "growth_rate"),
        (draw_resnext_forms, {"cardinality": True}, "cardinality"),
        (draw_resnext_forms, {"in_channels": -1}, "in_channels"),
    ],
)
def test_bad_sizes_are_refused_with_their_name(draw, kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be a positive int"):
        draw(**kwargs)
