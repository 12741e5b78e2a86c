"""Lab 01's graded questions, each checked in-process as the grader does (`run_checks`, and the
verdict on the calls the answer made).

The tests every lab shares (`questions.QuestionSuite`) run on this lab's cases: correct answers in
other forms; shortcuts (labkit's function, a private helper of labkit with the same signature,
torch's layers measuring what the question asks to compute, the reference the visible checks used
to hold); plausible wrong answers; answers tuned to the visible checks' inputs. The answer cell
and the probe cell after it run from the solutions notebook itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import slips
import torch
from questions import Lab, QuestionSuite
from torch import nn

from labkit.grading.worker.checks import run_checks
from labkit.models.vgg import vgg
from labkit.vgg.receptive_field import layer_geometry


def _namespace() -> dict:
    # cells run as a kernel runs them: functions defined in them belong to __main__
    names = {"__name__": "__main__", "torch": torch, "nn": nn, "pd": pd, "np": np, "vgg": vgg}
    return {**names, "layer_geometry": layer_geometry}


LAB = Lab(
    Path(__file__).resolve().parents[2] / "solutions" / "01_vgg_receptive_fields.ipynb", _namespace
)
Q1, Q2, Q4 = "q1_output_size", "q2_receptive_field", "q4_fc_to_conv"


def test_each_question_forbids_what_implements_its_idea() -> None:
    # output sizes and fields are arithmetic: no layer may measure them; question 4 asks for an
    # nn.Conv2d, so only labkit (always forbidden) is (`TestQuestions.forbids_nothing`)
    for grade_id in (Q1, Q2):
        forbidden = LAB.questions[grade_id].forbidden
        assert {"torch.nn.modules.conv", "torch.nn.functional", "torch.conv2d"} <= set(forbidden)


OTHER_FORMS = [
    (
        Q1,
        "import math\n"
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):  # floats and math.floor\n"
        "    return math.floor((n + 2.0 * padding - dilation * (kernel - 1) - 1) / stride + 1)",
    ),
    (
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):  # count the starts\n"
        "    last_start = n + 2 * padding - (kernel - 1) * dilation - 1\n"
        "    return np.int64(len(range(0, last_start + 1, stride)))",
    ),
    (
        Q2,
        "def receptive_fields(layers):  # a generator of numpy integers\n"
        "    field, jump = 1, 1\n"
        "    for k, s, d in layers:\n"
        "        field, jump = field + d * (k - 1) * jump, jump * s\n"
        "        yield np.int64(field), np.int64(jump)\n",
    ),
    (
        Q2,
        "def receptive_fields(layers):  # numpy: the jumps first, as cumulative products\n"
        "    k, s, d = np.asarray(layers).T\n"
        "    jumps = np.cumprod(s)\n"
        "    before = np.concatenate([[1], jumps[:-1]])\n"
        "    fields = 1 + np.cumsum(d * (k - 1) * before)\n"
        "    return list(zip(fields.tolist(), jumps.tolist()))",
    ),
    (
        Q4,
        "def fc_to_conv(linear, in_channels, grid):  # a state dict, reshaped in numpy\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid)\n"
        "    weight = linear.weight.detach().double().numpy()\n"
        "    weight = weight.reshape(-1, in_channels, grid, grid)\n"
        "    state = {'weight': torch.from_numpy(weight).float(), 'bias': linear.bias.detach()}\n"
        "    conv.load_state_dict(state)\n"
        "    return conv",
    ),
    (
        Q4,
        "def fc_to_conv(linear, in_channels, grid):  # new parameters, unflattened\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, (grid, grid), bias=True)\n"
        "    unflat = nn.Unflatten(1, (in_channels, grid, grid))\n"
        "    conv.weight = nn.Parameter(unflat(linear.weight.detach().clone()))\n"
        "    conv.bias = nn.Parameter(linear.bias.detach().clone())\n"
        "    return conv",
    ),
]


# The reference the visible check of question 2 used to hold, pasted into the notebook: it builds
# the chain with weights 1 and reads the gradient's support
MEASURED = """
def measured(layers, size=420):
    out, stack = [], []
    for k, s, d in layers:
        conv = nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False)
        nn.init.ones_(conv.weight)
        stack.append(conv.double())
        image = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        net = nn.Sequential(*stack)
        rows = []
        for col in (0, 1):
            grad, = torch.autograd.grad(net(image)[0, 0, 0, col], image)
            rows.append(torch.nonzero(grad[0, 0].sum(dim=0)).flatten())
        out.append((int(rows[0][-1] - rows[0][0] + 1), int(rows[1][0] - rows[0][0])))
    return out
"""
# question 4's helper in labkit, with the same signature as the answer
AS_CONV = "from labkit.vgg.dense_evaluation import _as_conv\n"
FULLY_CONVOLUTIONAL = """
from labkit.vgg.dense_evaluation import fully_convolutional
def fc_to_conv(linear, in_channels, grid):
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(1, in_channels, 1))
    model.avgpool = nn.AdaptiveAvgPool2d(grid)
    model.classifier = nn.Sequential(linear)
    return fully_convolutional(model).classifier[0]
"""
SIZE_TABLE = """
from labkit.vgg.receptive_field import receptive_field_table
def output_size(n, kernel, stride=1, padding=0, dilation=1):
    layer = nn.Conv2d(3, 1, kernel, stride, padding, dilation)
    return int(receptive_field_table(layer, n)["output size"].iloc[-1])
"""
FIELD_TABLE = """
from labkit.vgg.receptive_field import receptive_field_table
def receptive_fields(layers):
    chain = nn.Sequential(*[nn.Conv2d(3, 3, k, s, dilation=d) for k, s, d in layers])
    table = receptive_field_table(chain, 512)
    return list(zip(table["receptive field"], table["jump"]))
"""
MEASURED_SIZE = (
    "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
    "    layer = {layer}(1, 1, kernel, stride, padding, dilation)\n"
    "    with torch.no_grad():\n"
    "        return layer(torch.zeros(1, 1, n, n)).shape[-1]"
)

# (question, the student's cells in order (the answer last), words the feedback must hold)
SHORTCUTS = [
    (Q1, (SIZE_TABLE,), "labkit.vgg.receptive_field.receptive_field_table"),
    (Q1, (MEASURED_SIZE.format(layer="nn.Conv2d"),), "torch.nn.modules.conv.Conv2d"),
    (
        Q1,
        ("from torch.nn import Conv2d as Layer", MEASURED_SIZE.format(layer="Layer")),
        "torch.nn.modules.conv.Conv2d",
    ),
    (
        Q1,
        (
            "import torch.nn.functional as F\n"
            "def slide(n, kernel, stride, padding, dilation):  # a helper in a cell of its own\n"
            "    image, weight = torch.zeros(1, 1, n, n), torch.zeros(1, 1, kernel, kernel)\n"
            "    return F.conv2d(image, weight, None, stride, padding, dilation).shape[-1]",
            "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
            "    return slide(n, kernel, stride, padding, dilation)",
        ),
        "conv2d",
    ),
    (
        Q1,
        (
            "from torch.nn.functional import unfold as windows\n"
            "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
            "    patches = windows(torch.zeros(1, 1, n, n), kernel, dilation, padding, stride)\n"
            "    return round(patches.shape[-1] ** 0.5)",
        ),
        "torch.nn.functional.unfold",
    ),
    (Q2, (FIELD_TABLE,), "labkit.vgg.receptive_field.receptive_field_table"),
    (
        Q2,
        (MEASURED, "def receptive_fields(layers):\n    return measured(layers)"),
        "torch.nn.modules.conv.Conv2d",
    ),
    (
        Q2,
        (
            "from torch.nn import Conv2d as Layer\n" + MEASURED.replace("nn.Conv2d", "Layer"),
            "receptive_fields = measured",  # the pasted check, renamed
        ),
        "torch.nn.modules.conv.Conv2d",
    ),
    (
        Q4,
        (
            AS_CONV + "def fc_to_conv(linear, in_channels, grid):\n"
            "    return _as_conv(linear, in_channels, grid)",
        ),
        "labkit.vgg.dense_evaluation._as_conv",
    ),
    (
        Q4,
        (
            "import labkit.vgg.dense_evaluation as dense",
            "def fc_to_conv(linear, in_channels, grid):\n"
            "    return dense._as_conv(linear, in_channels, grid)",
        ),
        "labkit.vgg.dense_evaluation._as_conv",
    ),
    (Q4, ("from labkit.vgg.dense_evaluation import _as_conv as fc_to_conv",), "_as_conv"),
    (Q4, (FULLY_CONVOLUTIONAL,), "labkit.vgg.dense_evaluation.fully_convolutional"),
]


def test_a_labkit_function_renamed_as_the_answer_is_named() -> None:
    """An answer that only binds labkit's function to the answer's name calls nothing itself
    (the probe calls it): the recording notes the binding, and the visible checks see where the
    function was defined, each naming it."""
    points, message = LAB.mark(Q4, AS_CONV + "fc_to_conv = _as_conv")
    assert points == 0.0 and "labkit.vgg.dense_evaluation._as_conv" in message, message
    question = LAB.questions[Q4]
    values = LAB.answered(Q4, AS_CONV + "fc_to_conv = _as_conv")
    points, message = run_checks(question, {n: values[n] for n in question.names})
    assert points == 0.0
    assert message.startswith(
        "your fc_to_conv is labkit.vgg.dense_evaluation._as_conv, not a function"
    )


# answers right on the visible checks' inputs only: the hidden checks' inputs catch them
TUNED = [
    (
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):  # the checks' sizes\n"
        "    known = {(224, 3, 1, 1, 1): 224, (224, 2, 2, 0, 1): 112, (7, 2, 2, 0, 1): 3,\n"
        "             (227, 11, 4, 0, 1): 55, (13, 3, 2, 0, 1): 6, (224, 7, 2, 3, 1): 112,\n"
        "             (28, 5, 3, 1, 1): 9, (32, 3, 1, 2, 2): 32, (20, 3, 1, 0, 4): 12,\n"
        "             (9, 1, 2, 0, 1): 5}\n"
        "    return known.get((n, kernel, stride, padding, dilation), (n + 2 * padding) // stride)",
    ),
    (
        Q1,  # the visible layers dilate by 1, 2 and 4: a dilation of 3 ignored goes unseen there
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    span = (dilation if dilation != 3 else 1) * (kernel - 1) + 1\n"
        "    return (n + 2 * padding - span) // stride + 1",
    ),
    (
        Q2,  # the same slip on question 2's chains
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        field += (d if d != 3 else 1) * (k - 1) * jump\n"
        "        jump *= s\n"
        "        out.append((field, jump))\n"
        "    return out",
    ),
    (
        Q4,
        "def fc_to_conv(linear, in_channels, grid):  # right for the visible 2 x 2 layer only\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid)\n"
        "    weight = linear.weight.detach().view(-1, in_channels, grid, grid)\n"
        "    if grid != 2:\n"
        "        weight = weight.transpose(2, 3)\n"
        "    conv.load_state_dict({'weight': weight, 'bias': linear.bias.detach()})\n"
        "    return conv",
    ),
]


WRONG = [
    (Q1, slips.SIZE_WITHOUT_DILATION, "your sizes ignore the dilation"),
    (  # rounded up
        Q1,
        "import math\n"
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return math.ceil((n - dilation * (kernel - 1) - 1 + 2 * padding) / stride) + 1",
        "your sizes round the division up",
    ),
    (  # the +1 forgotten
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + 2 * padding) // stride",
        "your 223, the layer gives 224",
    ),
    (  # padding on one side only
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + padding) // stride + 1",
        "(224, 3, 1, 1, 1): your 223",
    ),
    (  # the dilation multiplying the whole kernel
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n + 2 * padding - dilation * kernel) // stride + 1",
        "(32, 3, 1, 2, 2): your 31, the layer gives 32",
    ),
    (  # true division
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + 2 * padding) / stride + 1",
        "should return one whole number per layer",
    ),
    (  # a tuple, the output's height and width
        Q1,
        "_size = output_size\n"
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    m = _size(n, kernel, stride, padding, dilation)\n"
        "    return (m, m)",
        "should return one whole number per layer (an int: use //), got [(224, 224)",
    ),
    (Q2, slips.FIELD_BY_OUTPUT_JUMP, "your fields use each layer's own (output) jump"),
    (  # strides added instead of multiplied
        Q2,
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        field += d * (k - 1) * jump\n"
        "        jump += s - 1\n"
        "        out.append((field, jump))\n"
        "    return out",
        "the jump is the product of the strides so far",
    ),
    (  # the image itself listed first: one entry too many
        Q2,
        "_fields = receptive_fields\n"
        "def receptive_fields(layers):\n"
        "    return [(1, 1)] + _fields(layers)",
        "vgg16: expected one (receptive field, jump) per layer (18), got 19",
    ),
    (  # the dilation ignored
        Q2,
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        field += (k - 1) * jump\n"
        "        jump *= s\n"
        "        out.append((field, jump))\n"
        "    return out",
        "dilated: layer 1: your (field, jump) (5, 1), the gradient says (7, 1)",
    ),
    (  # the kernel added, not k - 1 jumps
        Q2,
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        field += d * k * jump\n"
        "        jump *= s\n"
        "        out.append((field, jump))\n"
        "    return out",
        "vgg16: layer 0: your (field, jump) (4, 1), the gradient says (3, 1)",
    ),
    (Q4, slips.CONV_WITHOUT_BIAS, "copy the linear layer's bias"),
    (  # rows and columns swapped
        Q4,
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid)\n"
        "    with torch.no_grad():\n"
        "        w = linear.weight.view(-1, in_channels, grid, grid).transpose(2, 3)\n"
        "        conv.weight.copy_(w)\n"
        "        conv.bias.copy_(linear.bias)\n"
        "    return conv",
        "rows and columns are swapped",
    ),
    (  # channels last: the weights read as (out, grid, grid, in_channels)
        Q4,
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid)\n"
        "    with torch.no_grad():\n"
        "        w = linear.weight.view(-1, grid, grid, in_channels).permute(0, 3, 1, 2)\n"
        "        conv.weight.copy_(w)\n"
        "        conv.bias.copy_(linear.bias)\n"
        "    return conv",
        "you read the weights channel last",
    ),
    (  # padded to keep the size: a map of the input's size, not of the windows
        Q4,
        "_right = fc_to_conv\n"
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    conv = _right(linear, in_channels, grid)\n"
        "    conv.padding = (grid // 2, grid // 2)\n"
        "    return conv",
        "should give (1, 2, 1, 2), not (1, 2, 3, 4)",
    ),
    (  # the fully connected layer on every window, in a module of its own (the old check's loop)
        Q4,
        "class SlidingLinear(nn.Module):\n"
        "    def __init__(self, linear, grid):\n"
        "        super().__init__()\n"
        "        self.linear, self.grid = linear, grid\n"
        "    def forward(self, x):\n"
        "        g, (h, w) = self.grid, x.shape[-2:]\n"
        "        rows = [[self.linear(x[:, :, i : i + g, j : j + g].flatten(1))\n"
        "                 for j in range(w - g + 1)] for i in range(h - g + 1)]\n"
        "        return torch.stack([torch.stack(r, -1) for r in rows], -2)\n"
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    return SlidingLinear(linear, grid)",
        "fc_to_conv should return an nn.Conv2d, not a __main__.SlidingLinear",
    ),
]


class TestQuestions(QuestionSuite):
    lab = LAB
    points = {Q1: 2.0, Q2: 3.0, Q4: 2.0}
    forbids_nothing = (Q4,)
    # what students see compares with literal values: no layer, gradient or torchvision
    references = ("Conv2d(", "conv2d(", "autograd", "torchvision", "@ ", "for k, s, d")
    other_forms = [(grade_id, (answer,)) for grade_id, answer in OTHER_FORMS]
    shortcuts = SHORTCUTS
    wrong = WRONG
    visible_only = [(grade_id, (answer,)) for grade_id, answer in TUNED]


def test_a_changed_probe_is_named() -> None:
    ns = LAB.answered(Q1, LAB.answer(Q1))
    ns["size_cases"] = ns["size_cases"][:-1]
    points, got = LAB.grade(Q1, ns)
    assert points == 0.0 and "run the cell after your answer unchanged" in got
