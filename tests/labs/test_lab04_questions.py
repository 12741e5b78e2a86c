"""Lab 04's graded questions, each checked in-process as the grader does (`run_checks` and the
verdict on the calls the answer made).

The tests every lab shares (`questions.QuestionSuite`) run on this lab's cases: correct answers in
other forms (einsum or reshape, a loop over locations, float64, NumPy values); shortcuts (labkit's
own version, through an alias or a helper in another cell, a convolution where the question asks
for a product, the visible check's literal values pasted as the answer); plausible wrong answers,
with a message a student can act on where the visible check can tell, and only "a hidden check
failed" where they were tuned to the visible inputs. The answer cell and the probe cell after it
run from the solutions notebook itself, so the tests follow the lab.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from questions import Lab, QuestionSuite
from torch import nn


def _namespace() -> dict:
    return {"__name__": "__main__", "torch": torch, "nn": nn, "F": F, "pd": pd, "np": np}


LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "04_bcnn_hbp.ipynb", _namespace)
_model = LAB.answer
CODE_QUESTIONS = ("q1_bilinear", "q2_interaction", "q3_accumulation")


def test_each_question_has_one_checks_cell_and_the_convolutions_are_forbidden_in_q2() -> None:
    # every check hides some lines, and q1 and q3 forbid labkit only (`TestQuestions`)
    assert all(len(LAB.questions[grade_id].checks) == 1 for grade_id in CODE_QUESTIONS)
    forbidden = set(LAB.questions["q2_interaction"].forbidden)
    assert {"torch.nn.modules.conv", "torch.nn.functional.conv2d", "torch.convolution"} <= forbidden


OTHER_FORMS = [
    (
        "q1_bilinear",
        """
def bilinear_pooling(features):  # einsum, float64 inside
    x = features.double().flatten(2)
    return torch.einsum("ncl,ndl->ncd", x, x).div(x.shape[2]).flatten(1)

def signed_sqrt_l2(z):  # an epsilon inside the root, F.normalize for the rows
    return F.normalize(torch.sign(z) * torch.sqrt(z.abs() + 1e-10), dim=-1)
""",
    ),
    (
        "q1_bilinear",
        """
def bilinear_pooling(features):  # a loop over locations and images: slower, the same numbers
    n, c, h, w = features.shape
    out = torch.zeros(n, c, c)
    for k in range(n):
        for i in range(h):
            for j in range(w):
                out[k] += torch.outer(features[k, :, i, j], features[k, :, i, j])
    return (out / (h * w)).reshape(n, c * c)

def signed_sqrt_l2(z):  # torch.where, a norm of its own
    root = torch.where(z >= 0, z.clamp(min=0).sqrt(), -(-z).clamp(min=0).sqrt())
    return root / root.pow(2).sum(dim=1, keepdim=True).sqrt()
""",
    ),
    (
        "q2_interaction",
        """
def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):
    n, _, h, w = x_a.shape  # reshape and matrix products, one (d, L) matrix per image
    p_a = weight_a @ x_a.reshape(n, -1, h * w) + bias_a.unsqueeze(1)
    p_b = weight_b @ x_b.reshape(n, -1, h * w) + bias_b.unsqueeze(1)
    return torch.sum(p_a * p_b, dim=-1)
""",
    ),
    (
        "q2_interaction",
        """
def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):
    # F.linear at every location (channels last): a matrix product plus the bias
    p_a = F.linear(x_a.permute(0, 2, 3, 1), weight_a, bias_a)
    p_b = F.linear(x_b.permute(0, 2, 3, 1), weight_b, bias_b)
    return (p_a * p_b).sum(dim=(1, 2)).double()
""",
    ),
    (
        "q3_accumulation",
        """
def accumulate_gradients(model, loss_fn, micro_batches):
    sizes = np.array([len(t) for _, t in micro_batches], dtype=np.float64)
    for (x, y), share in zip(micro_batches, sizes / sizes.sum()):
        torch.autograd.backward(loss_fn(model(x), y) * float(share))
""",
    ),
    (
        "q3_accumulation",
        """
def accumulate_gradients(model, loss_fn, micro_batches):
    # each micro-batch's gradient by torch.autograd.grad, added into .grad by hand
    total = sum(len(t) for _, t in micro_batches)
    params = [p for p in model.parameters() if p.requires_grad]
    for x, y in micro_batches:
        grads = torch.autograd.grad(loss_fn(model(x), y) * len(y) / total, params)
        for p, g in zip(params, grads):
            p.grad = g.clone() if p.grad is None else p.grad + g
""",
    ),
]


def test_numpy_values_get_full_marks() -> None:
    ns = LAB.answered("q1_bilinear", _model("q1_bilinear"))
    for name in ("pooled", "q1_random_pooled"):
        ns[name] = ns[name].double().numpy()
    ns["normalized"] = ns["normalized"].numpy()
    assert LAB.grade("q1_bilinear", ns) == (2.0, "")
    ns = LAB.answered("q3_accumulation", _model("q3_accumulation"))
    for name in ("line_grads", "accumulated"):
        ns[name] = {s: {k: v.numpy() for k, v in g.items()} for s, g in ns[name].items()}
    assert LAB.grade("q3_accumulation", ns) == (3.0, "")


# (c) shortcuts: each scores nothing, and the feedback names what the answer called
SHORTCUTS = [
    (  # labkit's bilinear pooling, through an alias
        "q1_bilinear",
        [
            "from labkit.bilinear.pooling import bilinear_pool as pool\n"
            "def bilinear_pooling(features):\n"
            "    return pool(features)"
        ],
        "labkit.bilinear.pooling.bilinear_pool",
    ),
    (  # labkit's pooling through a helper defined in another cell of the notebook
        "q1_bilinear",
        [
            "import labkit.bilinear.pooling as kit\ndef _pool(x):\n    return kit.bilinear_pool(x)",
            "def bilinear_pooling(features):\n    return _pool(features)",
        ],
        "labkit.bilinear.pooling.bilinear_pool",
    ),
    (  # two nn.Conv2d 1x1 layers holding the weights: what the question rules out
        "q2_interaction",
        [
            "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
            "    conv_a = nn.Conv2d(weight_a.shape[1], weight_a.shape[0], 1)\n"
            "    conv_b = nn.Conv2d(weight_b.shape[1], weight_b.shape[0], 1)\n"
            "    with torch.no_grad():\n"
            "        conv_a.weight.copy_(weight_a[:, :, None, None])\n"
            "        conv_a.bias.copy_(bias_a)\n"
            "        conv_b.weight.copy_(weight_b[:, :, None, None])\n"
            "        conv_b.bias.copy_(bias_b)\n"
            "    return (conv_a(x_a) * conv_b(x_b)).sum(dim=(2, 3))"
        ],
        "torch.nn.modules.conv.Conv2d",
    ),
    (  # F.conv2d through an alias
        "q2_interaction",
        [
            "from torch.nn.functional import conv2d as project\n"
            "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
            "    p_a = project(x_a, weight_a[:, :, None, None], bias_a)\n"
            "    p_b = project(x_b, weight_b[:, :, None, None], bias_b)\n"
            "    return (p_a * p_b).sum(dim=(2, 3))"
        ],
        "conv2d",
    ),
    (  # a 1x1 convolution as conv1d over the flattened locations, in a helper cell
        "q2_interaction",
        [
            "def _project(x, weight, bias):\n"
            "    return torch.nn.functional.conv1d(x.flatten(2), weight[:, :, None], bias)",
            "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
            "    return (_project(x_a, weight_a, bias_a) * _project(x_b, weight_b, bias_b)).sum(2)",
        ],
        "conv1d",
    ),
    (  # labkit's private projection helper, same arguments as the question's
        "q2_interaction",
        [
            "from labkit.bilinear.pooling import _project\n"
            "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
            "    return (_project(x_a, weight_a, bias_a) * _project(x_b, weight_b, bias_b)).sum(2)"
        ],
        "labkit.bilinear.pooling._project",
    ),
    (  # labkit's three interactions, the first one taken
        "q2_interaction",
        [
            "from labkit.bilinear.pooling import hbp_interactions\n"
            "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
            "    maps, ws = (x_a, x_b, x_b), (weight_a, weight_b, weight_b)\n"
            "    return hbp_interactions(maps, ws, (bias_a, bias_b, bias_b))[0]"
        ],
        "labkit.bilinear.pooling.hbp_interactions",
    ),
    (  # labkit's training step, which scales and backpropagates one micro-batch
        "q3_accumulation",
        [
            "from labkit.training.steps import backward_step\n"
            "def accumulate_gradients(model, loss_fn, micro_batches):\n"
            "    total = sum(len(y) for _, y in micro_batches)\n"
            "    for x, y in micro_batches:\n"
            "        backward_step(model, x, y, loss_fn=loss_fn, loss_scale=len(y) / total)"
        ],
        "labkit.training.steps.backward_step",
    ),
]


# a library's function handed over as the answer itself: the probe calls it, not the student's
# code; the grader notes what the answer's names hold (and the visible check where they come from)
HANDED_OVER = [
    (
        "q1_bilinear",
        "from labkit.bilinear.pooling import signed_sqrt_l2",
        "your answer calls labkit.bilinear.pooling.signed_sqrt_l2",
    ),
    (
        "q1_bilinear",
        "import labkit.bilinear.pooling\nbilinear_pooling = labkit.bilinear.pooling.bilinear_pool",
        "your answer calls labkit.bilinear.pooling.bilinear_pool",
    ),
]


@pytest.mark.parametrize(("grade_id", "cell", "message"), HANDED_OVER)
def test_a_library_function_handed_over_as_the_answer_gets_no_marks(
    grade_id: str, cell: str, message: str
) -> None:
    points, got = LAB.mark(grade_id, _model(grade_id), cell)
    assert points == 0.0 and message in got, got


# the visible checks' literal values returned as the answer: they pass the visible checks, and
# the hidden checks, on random inputs, fail them
PASTED = [
    (
        "q1_bilinear",
        "def bilinear_pooling(features):\n"
        "    return torch.tensor([[5 / 3, 2 / 3, 2 / 3, 10 / 3], [2.0, 1 / 3, 1 / 3, 5 / 3]])\n"
        "def signed_sqrt_l2(z):\n"
        "    return torch.tensor([[2 / 3, -1 / 3, 0.0, 2 / 3], [0.6, 0.0, -0.8, 0.0]])",
    ),
    (
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    return torch.tensor([[2.0, 12.0], [4.0, 4.0]])",
    ),
    (  # the line's gradients written into .grad, with one zero-weighted backward per part
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        (0 * loss_fn(model(x), y)).backward()\n"
        "    if isinstance(model, nn.Linear):\n"
        "        model.weight.grad = torch.tensor([[-12.0, -12.5]])\n"
        "        model.bias.grad = torch.tensor([-9.0])",
    ),
]


WRONG = [
    (  # summed over locations instead of averaged
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    x = f.flatten(2)\n"
        "    return (x @ x.transpose(1, 2)).flatten(1)",
        "your pooling is 3 times too large",
    ),
    (  # one matrix over the whole batch: the images' locations mixed together
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    n, c = f.shape[:2]\n"
        "    x = f.transpose(0, 1).reshape(c, -1)\n"
        "    return (x @ x.T / x.shape[1]).flatten().repeat(n, 1)",
        "image 0 is section 2's map",
    ),
    (  # the locations' Gram matrix (L x L) instead of the channels' (C x C)
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    x = f.flatten(2)\n"
        "    return (x.transpose(1, 2) @ x / x.shape[2]).flatten(1)",
        "should return (N, C * C) = (2, 4), not (2, 9)",
    ),
    (  # divided by the number of channels, not of locations
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    x = f.flatten(2)\n"
        "    return (x @ x.transpose(1, 2) / x.shape[1]).flatten(1)",
        "image 0 is section 2's map, whose B is [5/3, 2/3, 2/3, 10/3]",
    ),
    (  # the square root of z itself: NaN where z < 0
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n    return F.normalize(z.sqrt(), dim=1)",
        "signed_sqrt_l2 gave NaN",
    ),
    (  # the sign dropped
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n    return F.normalize(z.abs().sqrt(), dim=1)",
        "signed_sqrt_l2 lost the signs",
    ),
    (  # normalised first, square root after: rows no longer of length 1
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n"
        "    z = F.normalize(z, dim=1)\n"
        "    return torch.sign(z) * z.abs().sqrt()",
        "every row of signed_sqrt_l2's output should have length 1",
    ),
    (  # a large epsilon inside the root: signs and lengths right, values not
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n    return F.normalize(torch.sign(z) * (z.abs() + 0.05).sqrt())",
        "take the square root of |z| itself",
    ),
    (  # no square root at all: signs and lengths right, values not
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n    return z / z.norm(dim=1, keepdim=True)",
        "signed_sqrt_l2 of [4, -1, 0, 4] should be [2, -1, 0, 2] / 3",
    ),
    (  # the rows' norm over the whole batch, right when the batch has one row only
        "q1_bilinear",
        "def signed_sqrt_l2(z):\n"
        "    root = torch.sign(z) * z.abs().sqrt()\n"
        "    return root / root.norm()",
        "every row of signed_sqrt_l2's output should have length 1",
    ),
    (  # the mean over the locations
        "q2_interaction",
        "_sum = cross_layer_interaction\n"
        "def cross_layer_interaction(**inputs):\n"
        "    return _sum(**inputs) / (inputs['x_a'].shape[2] * inputs['x_a'].shape[3])",
        "your interaction is the mean over the 2 locations",
    ),
    (  # the biases forgotten
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    p_a = torch.einsum('dc,nchw->ndhw', weight_a, x_a)\n"
        "    p_b = torch.einsum('dc,nchw->ndhw', weight_b, x_b)\n"
        "    return (p_a * p_b).sum(dim=(2, 3))",
        "both projections add their bias",
    ),
    (  # one bias forgotten
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    p_a = torch.einsum('dc,nchw->ndhw', weight_a, x_a) + bias_a[:, None, None]\n"
        "    p_b = torch.einsum('dc,nchw->ndhw', weight_b, x_b)\n"
        "    return (p_a * p_b).sum(dim=(2, 3))",
        "image 0 should give z_ab = [2, 12]",
    ),
    (  # every pair of the d channels (a d x d matrix), not the element-wise product
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    p_a = torch.einsum('dc,nchw->ndhw', weight_a, x_a) + bias_a[:, None, None]\n"
        "    p_b = torch.einsum('dc,nchw->ndhw', weight_b, x_b) + bias_b[:, None, None]\n"
        "    return torch.einsum('nahw,nbhw->nab', p_a, p_b)",
        "should be (N, d) = (2, 2), not (2, 2, 2)",
    ),
    (  # no scaling: the sum of the micro-batches' mean losses
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        loss_fn(model(x), y).backward()",
        "micro-batches 4 x 2: b's gradient is -36, not -9",
    ),
    (  # divided by the number of micro-batches: right for equal sizes only
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        (loss_fn(model(x), y) / len(micro_batches)).backward()",
        "dividing by the number of micro-batches is right only when they are all the same size",
    ),
    (  # one backward over everything: the right gradient, none of the memory saved
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    x = torch.cat([x for x, _ in micro_batches])\n"
        "    y = torch.cat([y for _, y in micro_batches])\n"
        "    loss_fn(model(x), y).backward()",
        "backward ran 1 times, not 4",
    ),
    (  # the micro-batches' losses added, then one backward: the memory of the whole batch
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    total = sum(len(y) for _, y in micro_batches)\n"
        "    sum(loss_fn(model(x), y) * len(y) / total for x, y in micro_batches).backward()",
        "backward ran 1 times, not 4",
    ),
    (  # each loss multiplied by its size but not divided by the total
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        (loss_fn(model(x), y) * len(y)).backward()",
        "b's gradient is -72, not -9",
    ),
]

# tuned to the visible inputs: after the model answer, they pass the visible checks and fail
# a hidden one
TUNED = [
    (  # summed over W only: right where H = 1, as in the visible inputs
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    p_a = torch.einsum('dc,nchw->ndhw', weight_a, x_a) + bias_a[:, None, None]\n"
        "    p_b = torch.einsum('dc,nchw->ndhw', weight_b, x_b) + bias_b[:, None, None]\n"
        "    return (p_a * p_b)[:, :, 0].sum(dim=-1)",
    ),
    (  # the visible batch's size written in: right for 8 images, not for the hidden 10
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        (loss_fn(model(x), y) * len(y) / 8).backward()",
    ),
]


class TestQuestions(QuestionSuite):
    lab = LAB
    points = {"q1_bilinear": 2.0, "q2_interaction": 2.0, "q3_accumulation": 3.0}
    forbids_nothing = ("q1_bilinear", "q3_accumulation")  # labkit only, always forbidden
    other_forms = [(grade_id, (answer,)) for grade_id, answer in OTHER_FORMS]
    # the shortcuts run after the model answer; the feedback says to write it yourself
    shortcuts = [(g, (_model(g), *cells), called) for g, cells, called in SHORTCUTS]
    shortcut_says = "yourself"
    wrong = WRONG
    visible_only = [(grade_id, (answer,)) for grade_id, answer in PASTED]
    visible_only += [(grade_id, (_model(grade_id), change)) for grade_id, change in TUNED]
