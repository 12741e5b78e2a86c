"""Lab 02's graded questions, each checked in-process as the grader does (`run_checks`).

For every question: (a) the model answer gets full marks, (b) a correct answer in another form
(other attribute names and nesting, NumPy and float64 values) gets full marks, (c) a plausible
wrong answer gets no marks and a message a student can act on. The answer cell and the probe
cell after it run from the solutions notebook itself, so the tests follow the lab.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from questions import Lab, run_cells
from torch import nn

from labkit.grading.checks import HIDDEN_FAILED

LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "02_densenet_resnext.ipynb")


def _run(*sources: str) -> dict:
    return run_cells({"torch": torch, "nn": nn, "F": F, "pd": pd, "np": np}, *sources)


_grade, _model, _probe = LAB.grade, LAB.answer, LAB.probe


OTHER_DENSE = """
class DenseLayer(nn.Module):  # nn.Sequential, other names, convs registered first
    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, 4 * growth_rate, 1, bias=False)
        self.grow = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.bn_in, self.bn_mid = nn.BatchNorm2d(in_channels), nn.BatchNorm2d(4 * growth_rate)

    def forward(self, x):
        h = self.grow(torch.relu(self.bn_mid(self.squeeze(torch.relu(self.bn_in(x))))))
        return torch.cat((x, h), 1)


class Transition(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.AvgPool2d(2))
"""


def test_dense_layer_model_answer_gets_full_marks() -> None:
    assert _grade("q1_dense_layer", _run(_model("q1_dense_layer"), _probe("q1_dense_layer"))) == (
        3.0,
        "",
    )


def test_dense_layer_in_another_form_and_numpy_values_gets_full_marks() -> None:
    ns = _run(OTHER_DENSE, _probe("q1_dense_layer"))
    ns["dense_out"] = ns["dense_out"].detach().double().numpy()  # float64 NumPy array
    ns["transition_weights"] = {k: v.numpy() for k, v in ns["transition_weights"].items()}
    assert _grade("q1_dense_layer", ns) == (3.0, "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # the new channels only, without the concatenation
            "DenseLayer.forward = lambda self, x: self.conv2(F.relu(self.norm2("
            "self.conv1(F.relu(self.norm1(x))))))",
            "should return (N, C + k, H, W) = (4, 32, 8, 8), not (4, 12, 8, 8)",
        ),
        (  # the ReLUs forgotten
            "DenseLayer.forward = lambda self, x: torch.cat("
            "[x, self.conv2(self.norm2(self.conv1(self.norm1(x))))], 1)",
            "your 12 new channels differ from torchvision's dense layer",
        ),
        (  # max instead of average pooling in the transition
            "Transition.forward = lambda self, x: F.max_pool2d(self.conv(F.relu(self.norm(x))), 2)",
            "your transition differs from torchvision's",
        ),
        (  # a convolution with a bias
            "_init = DenseLayer.__init__\n"
            "def _with_bias(self, c, growth_rate):\n"
            "    _init(self, c, growth_rate)\n"
            "    self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1)\n"
            "DenseLayer.__init__ = _with_bias",
            "lacks a convolution of weight (12, 48, 3, 3) without bias, which the reference has",
        ),
    ],
)
def test_dense_layer_wrong_answers_get_no_marks_and_say_why(change: str, message: str) -> None:
    points, got = _grade(
        "q1_dense_layer", _run(_model("q1_dense_layer"), change, _probe("q1_dense_layer"))
    )
    assert points == 0.0 and message in got, got


def test_layer_counting_model_answer_and_numpy_forms() -> None:
    assert _grade("q1_densenet_layers", _run(_model("q1_densenet_layers"))) == (2.0, "")
    numpy_form = {"handout_layers": np.int64(39), "blocks_52": np.array([6, 6, 6, 6])}
    assert _grade("q1_densenet_layers", numpy_form) == (2.0, "")
    assert _grade("q1_densenet_layers", {"handout_layers": 39.0, "blocks_52": [1, 1, 1, 21]}) == (
        2.0,
        "",
    )


@pytest.mark.parametrize(
    ("values", "points", "message"),
    [  # two checks cells: blocks_52 (1 point), handout_layers (1 point, its value hidden)
        ({"handout_layers": 39, "blocks_52": (2, 2, 6, 16)}, 1.0, "has 56 convolutions, not 52"),
        ({"handout_layers": 39, "blocks_52": (24,)}, 1.0, "should be four whole numbers"),
        ({"handout_layers": 38, "blocks_52": (6, 6, 6, 6)}, 1.0, HIDDEN_FAILED),  # no fc layer
        ({"handout_layers": 39.5, "blocks_52": (6, 6, 6, 6)}, 1.0, "should be a whole number"),
        ({"handout_layers": 34, "blocks_52": (2, 5, 4, 6)}, 0.0, "has 38 convolutions, not 52"),
    ],
)
def test_layer_counting_wrong_answers(values: dict, points: float, message: str) -> None:
    got_points, got = _grade("q1_densenet_layers", values)
    assert got_points == points and message in got, got


OTHER_RESNEXT = """
class ResNeXtBlock(nn.Module):  # Sequentials, shortcut registered first
    def __init__(self, in_channels, cardinality, bottleneck_width, stride=1):
        super().__init__()
        w = cardinality * bottleneck_width
        self.project = stride != 1 or in_channels != 2 * w
        self.skip = nn.Sequential(nn.Conv2d(in_channels, 2 * w, 1, stride, bias=False),
                                  nn.BatchNorm2d(2 * w)) if self.project else nn.Sequential()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, stride, 1, groups=cardinality, bias=False), nn.BatchNorm2d(w),
            nn.ReLU(), nn.Conv2d(w, 2 * w, 1, bias=False), nn.BatchNorm2d(2 * w))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def split_transform_merge(x, weight, cardinality, stride=1):
    groups = zip(x.chunk(cardinality, dim=1), weight.chunk(cardinality, dim=0))
    return torch.cat([F.conv2d(part, w, stride=stride, padding=1) for part, w in groups], 1)
"""


def test_resnext_model_answer_gets_full_marks() -> None:
    ns = _run(_model("q2_resnext"), _probe("q2_resnext"))
    assert _grade("q2_resnext", ns) == (3.0, "")


def test_resnext_in_another_form_and_float64_gets_full_marks() -> None:
    ns = _run(OTHER_RESNEXT, _probe("q2_resnext"))
    ns["paths_out"] = ns["paths_out"].detach().double()
    ns["block_out"] = ns["block_out"].detach().double().numpy()
    assert _grade("q2_resnext", ns) == (3.0, "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # every path convolved with group 0's weights
            "def split_transform_merge(x, weight, cardinality, stride=1):\n"
            "    d = x.shape[1] // cardinality\n"
            "    return torch.cat([F.conv2d(x[:, g * d:(g + 1) * d], weight[:d], padding=1)"
            " for g in range(cardinality)], 1)",
            "split_transform_merge differs from the grouped convolution",
        ),
        (  # ReLU before the shortcut is added
            "def _forward(self, x):\n"
            "    out = F.relu(self.bn1(self.conv1(x)))\n"
            "    out = F.relu(self.bn2(self.conv2(out)))\n"
            "    return F.relu(self.bn3(self.conv3(out))) + self.shortcut(x)\n"
            "ResNeXtBlock.forward = _forward",
            "differs from torchvision's bottleneck with groups",
        ),
        (  # no groups: a plain ResNet bottleneck
            "_init = ResNeXtBlock.__init__\n"
            "def _plain(self, c, cardinality, d, stride=1):\n"
            "    _init(self, c, cardinality, d, stride)\n"
            "    w = cardinality * d\n"
            "    self.conv2 = nn.Conv2d(w, w, 3, stride, 1, bias=False)\n"
            "ResNeXtBlock.__init__ = _plain",
            "lacks a convolution of weight (16, 4, 3, 3) without bias",
        ),
    ],
)
def test_resnext_wrong_answers_get_no_marks_and_say_why(change: str, message: str) -> None:
    points, got = _grade("q2_resnext", _run(_model("q2_resnext"), change, _probe("q2_resnext")))
    assert points == 0.0 and message in got, got


def test_a_wrong_identity_block_is_named_in_the_message() -> None:
    """A block that always projects passes the stride-2 case; the identity case says so."""
    change = (
        "_init = ResNeXtBlock.__init__\n"
        "def _always_project(self, c, cardinality, d, stride=1):\n"
        "    _init(self, c, cardinality, d, stride)\n"
        "    out = 2 * cardinality * d\n"
        "    self.shortcut = nn.Sequential(nn.Conv2d(c, out, 1, stride, bias=False),"
        " nn.BatchNorm2d(out))\n"
        "ResNeXtBlock.__init__ = _always_project"
    )
    points, got = _grade("q2_resnext", _run(_model("q2_resnext"), change, _probe("q2_resnext")))
    assert points == 0.0 and "ResNeXtBlock(32, 4, 4), whose shortcut is the identity" in got, got
    assert "has layers the reference does not" in got
