"""Lab 02's graded questions, each checked in-process as the grader does (`Lab.grade`).

The tests every lab shares (`questions.QuestionSuite`) run on this lab's cases: correct answers in
other forms (other attribute names and nesting, NumPy and float64 values); answers that call
labkit's or a library's version of the idea (through an alias, a helper in another cell, or the
reference the checks used to show); plausible wrong answers, and wrong answers tuned to the
visible inputs. The answer cell and the probe cells after it run from the solutions notebook
itself, so the tests follow the lab.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from questions import Lab, QuestionSuite, run_cells
from torch import nn

from labkit.grading.worker.checks import HIDDEN_FAILED
from labkit.models import count_layers, densenet_bc


def _namespace() -> dict:
    return {"torch": torch, "nn": nn, "F": F, "pd": pd, "np": np, "__name__": "__main__",
            "count_layers": count_layers, "densenet_bc": densenet_bc}  # fmt: skip


LAB = Lab(
    Path(__file__).resolve().parents[2] / "solutions" / "02_densenet_resnext.ipynb", _namespace
)
_model = LAB.answer


# ------------------------------------------------------------- q1_dense_layer

OTHER_DENSE = """
class DenseLayer(nn.Module):  # other names, convs registered first, torch.relu
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

MODEL_TRANSITION = """
class Transition(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2)
"""


def test_dense_layer_in_another_form_and_numpy_values_gets_full_marks() -> None:
    ns = LAB.answered("q1_dense_layer", OTHER_DENSE)
    ns["dense_out"] = ns["dense_out"].detach().double().numpy()  # float64 NumPy array
    ns["transition_weights"] = {k: v.numpy() for k, v in ns["transition_weights"].items()}
    ns["q1_outputs"] = [o.double().numpy() for o in ns["q1_outputs"]]
    assert LAB.grade("q1_dense_layer", ns) == (3.0, "")


DENSE_SHORTCUTS = [  # (cells: the student's own, then the answer; the name the feedback holds)
    (  # labkit's own layers, under the question's names
        ["from labkit.models.densenet import _Bottleneck as DenseLayer, _Transition as Transition"],
        "labkit.models.densenet._Bottleneck",
    ),
    (  # torchvision's layer through an alias, as a base class
        [
            "from torchvision.models.densenet import _DenseLayer as Layer\n"
            "class DenseLayer(Layer):\n"
            "    def __init__(self, in_channels, growth_rate):\n"
            "        super().__init__(in_channels, growth_rate, bn_size=4, drop_rate=0.0)\n"
            + MODEL_TRANSITION
        ],
        "torchvision.models.densenet._DenseLayer",
    ),
    (  # torchvision's layer built by a helper in a cell of the student's own
        [
            "from torchvision.models import densenet as tvd\n"
            "def make_layer(c, k):\n"
            "    return tvd._DenseLayer(c, k, 4, 0.0)",
            "class DenseLayer(nn.Module):\n"
            "    def __init__(self, in_channels, growth_rate):\n"
            "        super().__init__()\n"
            "        self.inner = make_layer(in_channels, growth_rate)\n"
            "    def forward(self, x):\n"
            "        return torch.cat([x, self.inner(x)], 1)\n" + MODEL_TRANSITION,
        ],
        "torchvision.models.densenet._DenseLayer",
    ),
    (  # the reference the visible check used to load the weights into, for the transition
        [
            "import torchvision\n"
            "DenseLayer = None\n"
            "class Transition(torchvision.models.densenet._Transition):\n"
            "    pass",
            _model("q1_dense_layer").split("class Transition")[0],
        ],
        "torchvision.models.densenet._Transition",
    ),
]


DENSE_WRONG = [  # (a change after the model answer, part of the message)
    (  # the new channels only, without the concatenation
        "DenseLayer.forward = lambda self, x: self.conv2(F.relu(self.norm2("
        "self.conv1(F.relu(self.norm1(x))))))",
        "should return (N, C + k, H, W) = (4, 32, 8, 8), not (4, 12, 8, 8)",
    ),
    (  # the ReLUs forgotten
        "DenseLayer.forward = lambda self, x: torch.cat("
        "[x, self.conv2(self.norm2(self.conv1(self.norm1(x))))], 1)",
        "your 12 new channels are not what the dense layer gives",
    ),
    (  # BN after the convolution (conv-BN-ReLU, ResNet's order)
        "DenseLayer.forward = lambda self, x: torch.cat([x, self.conv2(F.relu(self.norm2("
        "self.conv1(x))))], 1)",
        "your 12 new channels are not what the dense layer gives",
    ),
    (  # max instead of average pooling in the transition
        "Transition.forward = lambda self, x: F.max_pool2d(self.conv(F.relu(self.norm(x))), 2)",
        "your transition's output is not what it should be",
    ),
    (  # a convolution with a bias
        "_init = DenseLayer.__init__\n"
        "def _with_bias(self, c, growth_rate):\n"
        "    _init(self, c, growth_rate)\n"
        "    self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1)\n"
        "DenseLayer.__init__ = _with_bias",
        "holds 6428 numbers, not 6,416",
    ),
    (  # the bottleneck as wide as the input, not 4k
        "_init = DenseLayer.__init__\n"
        "def _wide(self, c, growth_rate):\n"
        "    _init(self, c, growth_rate)\n"
        "    self.conv1 = nn.Conv2d(c, c, 1, bias=False)\n"
        "    self.norm2 = nn.BatchNorm2d(c)\n"
        "    self.conv2 = nn.Conv2d(c, growth_rate, 3, padding=1, bias=False)\n"
        "DenseLayer.__init__ = _wide",
        "should hold a 1x1 convolution of weight (48, 20, 1, 1)",
    ),
]

# tuned to the visible sizes: the bottleneck is 48 wide whatever the growth rate
DENSE_TUNED = (
    "_init = DenseLayer.__init__\n"
    "def _fixed(self, c, growth_rate):\n"
    "    _init(self, c, growth_rate)\n"
    "    self.conv1 = nn.Conv2d(c, 48, 1, bias=False)\n"
    "    self.norm2 = nn.BatchNorm2d(48)\n"
    "    self.conv2 = nn.Conv2d(48, growth_rate, 3, padding=1, bias=False)\n"
    "DenseLayer.__init__ = _fixed"
)


# --------------------------------------------------------- q1_densenet_layers


COUNT_OTHER_FORMS = [
    "def densenet_layers(block_config):  # NumPy integers\n"
    "    return np.int64(2 * np.sum(block_config) + 5)\n"
    "blocks_52 = np.array([6, 6, 6, 6])",
    "def densenet_layers(blocks):  # a float, counted layer by layer\n"
    "    layers = 1.0\n"
    "    for i, n in enumerate(blocks):\n"
    "        layers += 2 * n + (i < len(blocks) - 1)\n"
    "    return layers + 1\n"
    "blocks_52 = [1, 1, 1, 21]",
]

COUNT_SHORTCUTS = [
    (  # labkit's counting rule on labkit's network
        [
            "def densenet_layers(block_config):\n"
            "    return count_layers(densenet_bc(block_config=block_config), shortcuts=False)\n"
            "blocks_52 = (2, 2, 4, 16)"
        ],
        "labkit",
    ),
    (  # torchvision's DenseNet, counted, through an alias
        [
            "import torchvision.models as tvm\n"
            "def densenet_layers(block_config):\n"
            "    net = tvm.DenseNet(growth_rate=4, block_config=block_config)\n"
            "    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())\n"
            "blocks_52 = (2, 2, 4, 16)"
        ],
        "torchvision.models.densenet",
    ),
]


RIGHT_COUNT = "def densenet_layers(b):\n    return 2 * sum(b) + 5\n"


@pytest.mark.parametrize(
    ("answer", "points", "message"),
    [  # two checks cells: blocks_52 (1 point), densenet_layers (1 point)
        (RIGHT_COUNT + "blocks_52 = (2, 2, 6, 16)", 1.0, HIDDEN_FAILED),  # 56 convolutions
        (RIGHT_COUNT + "blocks_52 = (1, 1, 1, 1)", 1.0, HIDDEN_FAILED),  # passes the visible check
        (RIGHT_COUNT + "blocks_52 = (24,)", 1.0, "should be four whole numbers"),
        (RIGHT_COUNT + "blocks_52 = (2, 2, 4.5, 15.5)", 1.0, "should be four whole numbers"),
        (  # no classifier
            "def densenet_layers(b):\n    return 2 * sum(b) + 4\nblocks_52 = (2, 2, 4, 16)",
            1.0,
            "densenet_layers((1, 1, 1, 1)) gives 12, not 13",
        ),
        (  # the transitions forgotten
            "def densenet_layers(b):\n    return 2 * sum(b) + 2\nblocks_52 = (6, 6, 6, 6)",
            1.0,
            "gives 10, not 13",
        ),
        (  # tuned to the visible value: a hidden check fails
            "def densenet_layers(b):\n    return 13 if tuple(b) == (1, 1, 1, 1) else 39\n"
            "blocks_52 = (6, 6, 6, 6)",
            1.0,
            HIDDEN_FAILED,
        ),
        (  # the handout's blocks counted, convolutions only
            "def densenet_layers(b):\n    return 2 * sum(b) + 4\nblocks_52 = (2, 5, 4, 6)",
            0.0,
            "gives 12, not 13",
        ),
    ],
)
def test_layer_counting_wrong_answers(answer: str, points: float, message: str) -> None:
    got_points, got = LAB.mark("q1_densenet_layers", answer)
    assert got_points == points and message in got, got


# ----------------------------------------------------------------- q2_resnext

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

MODEL_SPLIT = _model("q2_resnext")[_model("q2_resnext").index("def split_transform_merge") :]
MODEL_BLOCK = _model("q2_resnext")[: _model("q2_resnext").index("def split_transform_merge")]


def test_resnext_in_another_form_and_float64_gets_full_marks() -> None:
    ns = LAB.answered("q2_resnext", OTHER_RESNEXT)
    ns["paths_out"] = ns["paths_out"].detach().double()
    ns["block_out"] = ns["block_out"].detach().double().numpy()
    ns["q2_outputs"] = [o.numpy() for o in ns["q2_outputs"]]
    assert LAB.grade("q2_resnext", ns) == (3.0, "")


# no convolution call at all: each path as a matrix product over unfolded patches
UNFOLDED = (
    "def split_transform_merge(x, weight, cardinality, stride=1):\n"
    "    n, c, h, w = x.shape\n"
    "    out = []\n"
    "    paths = zip(x.chunk(cardinality, 1), weight.chunk(cardinality, 0))\n"
    "    for part, wg in paths:\n"
    "        cols = F.unfold(part, 3, padding=1, stride=stride)  # (N, d*9, L)\n"
    "        out.append(wg.reshape(len(wg), -1) @ cols)\n"
    "    ho, wo = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1\n"
    "    return torch.cat(out, 1).reshape(n, -1, ho, wo)"
)


BOTTLENECK_BLOCK = """
from torchvision.models.resnet import Bottleneck as Residual
class ResNeXtBlock(nn.Module):
    def __init__(self, in_channels, cardinality, bottleneck_width, stride=1):
        super().__init__()
        out = 2 * cardinality * bottleneck_width
        down = None
        if stride != 1 or in_channels != out:
            down = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False),
                                 nn.BatchNorm2d(out))
        self.inner = Residual(in_channels, out // 4, stride, down, cardinality, 128 // cardinality)
    def forward(self, x):
        return self.inner(x)
"""

REGNET_BLOCK = """
from torchvision.models.regnet import ResBottleneckBlock
def ResNeXtBlock(in_channels, cardinality, bottleneck_width, stride=1):
    return ResBottleneckBlock(in_channels, 2 * cardinality * bottleneck_width, stride,
                              nn.BatchNorm2d, nn.ReLU, bottleneck_width, 0.5, None)
"""

RESNEXT_SHORTCUTS = [
    (  # labkit's block, under the question's name
        ["from labkit.models.resnext import _Block as ResNeXtBlock\n" + MODEL_SPLIT],
        "labkit.models.resnext._Block",
    ),
    ([BOTTLENECK_BLOCK + MODEL_SPLIT], "torchvision.models.resnet.Bottleneck"),
    ([REGNET_BLOCK + MODEL_SPLIT], "torchvision.models.regnet"),
    (  # torchvision's bottleneck built by a helper in a cell of the student's own
        [
            "import torchvision\n"
            "def residual(c, out, stride, down, groups):\n"
            "    resnet = torchvision.models.resnet\n"
            "    return resnet.Bottleneck(c, out // 4, stride, down, groups, 128 // groups)",
            BOTTLENECK_BLOCK.replace(
                "Residual(in_channels, out // 4, stride, down, cardinality, 128 // cardinality)",
                "residual(in_channels, out, stride, down, cardinality)",
            )
            + MODEL_SPLIT,
        ],
        "torchvision.models.resnet.Bottleneck",
    ),
    (  # one grouped convolution, the thing the function is to compute path by path
        [
            MODEL_BLOCK + "def split_transform_merge(x, weight, cardinality, stride=1):\n"
            "    return F.conv2d(x, weight, stride=stride, padding=1, groups=cardinality)"
        ],
        "split_transform_merge ran a grouped convolution",
    ),
    (  # the same through nn.Conv2d, built in a helper of another cell
        [
            "def grouped(x, weight, groups, stride):\n"
            "    conv = nn.Conv2d(x.shape[1], len(weight), 3, stride, 1, groups=groups)\n"
            "    conv.weight.data = weight\n"
            "    return conv(x)",
            MODEL_BLOCK + "def split_transform_merge(x, weight, cardinality, stride=1):\n"
            "    return grouped(x, weight, cardinality, stride)",
        ],
        "split_transform_merge ran a grouped convolution",
    ),
]


RESNEXT_WRONG = [
    (  # every path convolved with group 0's weights
        "def split_transform_merge(x, weight, cardinality, stride=1):\n"
        "    d = x.shape[1] // cardinality\n"
        "    return torch.cat([F.conv2d(x[:, g * d:(g + 1) * d], weight[:d], stride=stride,"
        " padding=1) for g in range(cardinality)], 1)",
        "split_transform_merge differs from the grouped convolution",
    ),
    (  # ReLU before the shortcut is added
        "def _forward(self, x):\n"
        "    out = F.relu(self.bn1(self.conv1(x)))\n"
        "    out = F.relu(self.bn2(self.conv2(out)))\n"
        "    return F.relu(self.bn3(self.conv3(out))) + self.shortcut(x)\n"
        "ResNeXtBlock.forward = _forward",
        "ReLU after the sum",
    ),
    (  # no groups: a plain ResNet bottleneck
        "_init = ResNeXtBlock.__init__\n"
        "def _plain(self, c, cardinality, d, stride=1):\n"
        "    _init(self, c, cardinality, d, stride)\n"
        "    w = cardinality * d\n"
        "    self.conv2 = nn.Conv2d(w, w, 3, stride, 1, bias=False)\n"
        "ResNeXtBlock.__init__ = _plain",
        "has no weight of shape (16, 4, 3, 3): its 3x3 convolution is grouped",
    ),
    (  # the stride in the first 1x1 convolution instead of the 3x3 one
        "_init = ResNeXtBlock.__init__\n"
        "def _early(self, c, cardinality, d, stride=1):\n"
        "    _init(self, c, cardinality, d, stride)\n"
        "    w = cardinality * d\n"
        "    self.conv1 = nn.Conv2d(c, w, 1, stride, bias=False)\n"
        "    self.conv2 = nn.Conv2d(w, w, 3, 1, 1, groups=cardinality, bias=False)\n"
        "ResNeXtBlock.__init__ = _early",
        "with the probe's weights, ResNeXtBlock(24, 4, 4, stride=2) gives outputs of mean",
    ),
]

# tuned to the visible inputs: the stride ignored (the visible call has stride 1)
RESNEXT_TUNED = (
    "def split_transform_merge(x, weight, cardinality, stride=1):\n"
    "    d = x.shape[1] // cardinality\n"
    "    return torch.cat([F.conv2d(x[:, g * d:(g + 1) * d], weight[g * d:(g + 1) * d],"
    " padding=1) for g in range(cardinality)], 1)"
)


class TestQuestions(QuestionSuite):
    lab = LAB
    points = {"q1_dense_layer": 3.0, "q1_densenet_layers": 2.0, "q2_resnext": 3.0}
    references = ("groups=4)", "groups=3)")  # no grouped convolution for split_transform_merge
    other_forms = [("q1_densenet_layers", (answer,)) for answer in COUNT_OTHER_FORMS]
    other_forms += [("q2_resnext", (MODEL_BLOCK, UNFOLDED))]
    shortcuts = [("q1_dense_layer", *c) for c in DENSE_SHORTCUTS]
    shortcuts += [("q1_densenet_layers", *c) for c in COUNT_SHORTCUTS]
    shortcuts += [("q2_resnext", *c) for c in RESNEXT_SHORTCUTS]
    wrong = [("q1_dense_layer", *w) for w in DENSE_WRONG]
    wrong += [("q2_resnext", *w) for w in RESNEXT_WRONG]
    visible_only = [
        ("q1_dense_layer", (_model("q1_dense_layer"), DENSE_TUNED)),
        ("q2_resnext", (_model("q2_resnext"), RESNEXT_TUNED)),
    ]


def test_a_shortcut_that_only_projects_on_a_stride_fails_where_the_channels_change() -> None:
    """Right on the visible blocks; the hidden ResNeXtBlock(8, 2, 3) adds 8 channels to 12:
    the probe raises, as the grader's would, and the question's values are missing."""
    change = (
        "_init = ResNeXtBlock.__init__\n"
        "def _stride_only(self, c, cardinality, d, stride=1):\n"
        "    _init(self, c, cardinality, d, stride)\n"
        "    if stride == 1:\n"
        "        self.shortcut = nn.Identity()\n"
        "ResNeXtBlock.__init__ = _stride_only"
    )
    ns = {"torch": torch, "nn": nn, "F": F, "pd": pd, "np": np, "__name__": "__main__"}
    raised = []
    for cell in (_model("q2_resnext"), change, *LAB.probes("q2_resnext")):
        try:
            run_cells(ns, cell)
        except RuntimeError as error:  # the kernel goes on after a failing cell
            raised.append(str(error))
    assert raised and "must match the size" in raised[0]
    points, got = LAB.grade("q2_resnext", ns)
    assert points == 0.0 and "not defined where the notebook reaches the checks" in got, got


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
    points, got = LAB.mark("q2_resnext", _model("q2_resnext"), change)
    assert points == 0.0 and "ResNeXtBlock(32, 4, 4), whose shortcut is the identity" in got, got
    assert "a 1x1 projection only when the shape changes" in got
