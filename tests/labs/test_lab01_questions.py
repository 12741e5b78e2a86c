"""Lab 01's graded questions, each checked in-process as the grader does (`run_checks`).

For every question: (a) the model answer gets full marks, (b) a correct answer in another form
gets full marks, (c) a plausible wrong answer gets no marks and a message a student can act on.
The answer cell and the probe cell after it run from the solutions notebook itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from questions import Lab, run_cells
from torch import nn

from labkit.models.vgg import vgg
from labkit.receptive_field import layer_geometry

LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "01_vgg_receptive_fields.ipynb")
_grade, _model, _probe, _full = LAB.grade, LAB.answer, LAB.probe, LAB.full
CODE_QUESTIONS = ("q1_output_size", "q2_receptive_field", "q4_fc_to_conv")


def _run(*sources: str) -> dict:
    names = {"torch": torch, "nn": nn, "pd": pd, "np": np, "vgg": vgg}
    return run_cells({**names, "layer_geometry": layer_geometry}, *sources)


def test_every_code_question_is_tested_here() -> None:
    assert set(LAB.questions) == set(CODE_QUESTIONS)
    assert [_full(q) for q in CODE_QUESTIONS] == [2.0, 3.0, 2.0]


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_model_answers_get_full_marks(grade_id: str) -> None:
    ns = _run(_model(grade_id), _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_released_answer_cells_ask_for_the_answer(grade_id: str) -> None:
    released = LAB.released(grade_id)
    assert "### BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
    with pytest.raises(NotImplementedError):
        _run(released, _probe(grade_id))


OTHER_FORMS = {
    "q1_output_size": """
import math
def output_size(n, kernel, stride=1, padding=0, dilation=1):  # floats and math.floor
    return math.floor((n + 2.0 * padding - dilation * (kernel - 1) - 1) / stride + 1)
""",
    "q2_receptive_field": """
def receptive_fields(layers):  # a generator of numpy integers
    field, jump = 1, 1
    for k, s, d in layers:
        field, jump = field + d * (k - 1) * jump, jump * s
        yield np.int64(field), np.int64(jump)

""",
    "q4_fc_to_conv": """
def fc_to_conv(linear, in_channels, grid):  # a new state dict, float64 reshape through numpy
    conv = nn.Conv2d(in_channels, linear.out_features, grid)
    weight = linear.weight.detach().double().numpy().reshape(-1, in_channels, grid, grid)
    conv.load_state_dict({"weight": torch.from_numpy(weight).float(), "bias": linear.bias.detach()})
    return conv
""",
}


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_answers_in_other_forms_get_full_marks(grade_id: str) -> None:
    ns = _run(OTHER_FORMS[grade_id], _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


WRONG = [
    (  # the dilation ignored
        "q1_output_size",
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - kernel + 2 * padding) // stride + 1",
        "your sizes ignore the dilation",
    ),
    (  # rounded up
        "q1_output_size",
        "import math\n"
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return math.ceil((n - dilation * (kernel - 1) - 1 + 2 * padding) / stride) + 1",
        "your sizes round the division up",
    ),
    (  # the +1 forgotten
        "q1_output_size",
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + 2 * padding) // stride",
        "your 223, nn.Conv2d gives 224",
    ),
    (  # padding on one side only
        "q1_output_size",
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + padding) // stride + 1",
        "(224, 3, 1, 1, 1): your 223",
    ),
    (  # true division
        "q1_output_size",
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    return (n - dilation * (kernel - 1) - 1 + 2 * padding) / stride + 1",
        "should return one whole number per layer",
    ),
    (  # a tuple, the output's height and width
        "q1_output_size",
        "_size = output_size\n"
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    m = _size(n, kernel, stride, padding, dilation)\n"
        "    return (m, m)",
        "should return one whole number per layer (an int: use //), got [(224, 224)",
    ),
    (  # the field grows by the layer's output jump
        "q2_receptive_field",
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        jump *= s\n"
        "        field += d * (k - 1) * jump\n"
        "        out.append((field, jump))\n"
        "    return out",
        "your fields use each layer's own (output) jump",
    ),
    (  # strides added instead of multiplied
        "q2_receptive_field",
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
        "q2_receptive_field",
        "_fields = receptive_fields\n"
        "def receptive_fields(layers):\n"
        "    return [(1, 1)] + _fields(layers)",
        "vgg16: expected one (receptive field, jump) per layer (18), got 19",
    ),
    (  # the dilation ignored
        "q2_receptive_field",
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
        "q2_receptive_field",
        "def receptive_fields(layers):\n"
        "    field, jump, out = 1, 1, []\n"
        "    for k, s, d in layers:\n"
        "        field += d * k * jump\n"
        "        jump *= s\n"
        "        out.append((field, jump))\n"
        "    return out",
        "vgg16: layer 0: your (field, jump) (4, 1), the gradient says (3, 1)",
    ),
    (  # the bias forgotten
        "q4_fc_to_conv",
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid, bias=False)\n"
        "    with torch.no_grad():\n"
        "        conv.weight.copy_(linear.weight.view(-1, in_channels, grid, grid))\n"
        "    return conv",
        "copy the linear layer's bias",
    ),
    (  # rows and columns swapped
        "q4_fc_to_conv",
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
        "q4_fc_to_conv",
        "def fc_to_conv(linear, in_channels, grid):\n"
        "    conv = nn.Conv2d(in_channels, linear.out_features, grid)\n"
        "    with torch.no_grad():\n"
        "        w = linear.weight.view(-1, grid, grid, in_channels).permute(0, 3, 1, 2)\n"
        "        conv.weight.copy_(w)\n"
        "        conv.bias.copy_(linear.bias)\n"
        "    return conv",
        "on one window your convolution differs from the fully connected layer",
    ),
]


@pytest.mark.parametrize(("grade_id", "change", "message"), WRONG)
def test_plausible_wrong_answers_get_no_marks_and_say_why(
    grade_id: str, change: str, message: str
) -> None:
    points, got = _grade(grade_id, _run(_model(grade_id), change, _probe(grade_id)))
    assert points == 0.0 and message in got, got


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_an_unanswered_question_names_what_is_missing(grade_id: str) -> None:
    ns = _run(LAB.released(grade_id))
    with pytest.raises(NotImplementedError):
        exec(compile(_probe(grade_id), "<probe>", "exec"), ns)  # noqa: S102
    points, got = _grade(grade_id, ns)
    assert points == 0.0 and got.endswith("not defined where the notebook reaches the checks"), got


def test_a_changed_probe_is_named() -> None:
    ns = _run(_model("q1_output_size"), _probe("q1_output_size"))
    ns["size_cases"] = ns["size_cases"][:-1]
    points, got = _grade("q1_output_size", ns)
    assert points == 0.0 and "run the cell after your answer unchanged" in got
