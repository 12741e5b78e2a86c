"""Lab 04's graded questions, each checked in-process as the grader does (`run_checks`).

For every question: (a) the model answer gets full marks, (b) a correct answer in another form
(einsum or reshape, float64, NumPy values) gets full marks, (c) a plausible wrong answer gets no
marks and a message a student can act on. The answer cell and the probe cell after it run from
the solutions notebook itself, so the tests follow the lab.
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

LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "04_bcnn_hbp.ipynb")
_grade, _model, _probe, _full = LAB.grade, LAB.answer, LAB.probe, LAB.full
CODE_QUESTIONS = ("q1_bilinear", "q2_interaction", "q3_accumulation")


def _run(*sources: str) -> dict:
    return run_cells({"torch": torch, "nn": nn, "F": F, "pd": pd, "np": np}, *sources)


def test_every_code_question_is_tested_here() -> None:
    assert set(LAB.questions) == set(CODE_QUESTIONS)
    assert [_full(q) for q in CODE_QUESTIONS] == [2.0, 2.0, 3.0]


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_model_answers_get_full_marks(grade_id: str) -> None:
    ns = _run(_model(grade_id), _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_released_answer_cells_ask_for_the_answer(grade_id: str) -> None:
    """As released, each answer cell runs (its skeletons defined) and its probe cell, calling
    them, raises the stub's NotImplementedError."""
    released = LAB.released(grade_id)
    assert "### BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
    with pytest.raises(NotImplementedError):
        _run(released, _probe(grade_id))


OTHER_FORMS = {
    "q1_bilinear": """
def bilinear_pooling(features):  # einsum, float64 inside
    x = features.double().flatten(2)
    return torch.einsum("ncl,ndl->ncd", x, x).div(x.shape[2]).flatten(1)

def signed_sqrt_l2(z):  # labkit's epsilon inside the root, F.normalize
    return F.normalize(torch.sign(z) * torch.sqrt(z.abs() + 1e-10), dim=-1)
""",
    "q2_interaction": """
def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):
    n, _, h, w = x_a.shape  # reshape and matrix products, one (d, L) matrix per image
    p_a = weight_a @ x_a.reshape(n, -1, h * w) + bias_a.unsqueeze(1)
    p_b = weight_b @ x_b.reshape(n, -1, h * w) + bias_b.unsqueeze(1)
    return torch.sum(p_a * p_b, dim=-1)
""",
    "q3_accumulation": """
def accumulate_gradients(model, loss_fn, micro_batches):
    sizes = np.array([len(t) for _, t in micro_batches], dtype=np.float64)
    for (x, y), share in zip(micro_batches, sizes / sizes.sum()):
        torch.autograd.backward(loss_fn(model(x), y) * float(share))
""",
}


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_answers_in_other_forms_get_full_marks(grade_id: str) -> None:
    ns = _run(OTHER_FORMS[grade_id], _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


def test_numpy_values_get_full_marks() -> None:
    ns = _run(_model("q1_bilinear"), _probe("q1_bilinear"))
    ns["pooled"] = ns["pooled"].double().numpy()
    ns["normalized"] = ns["normalized"].numpy()
    assert _grade("q1_bilinear", ns) == (2.0, "")
    ns = _run(_model("q3_accumulation"), _probe("q3_accumulation"))
    ns["accumulated"] = {
        s: {k: v.numpy() for k, v in g.items()} for s, g in ns["accumulated"].items()
    }
    assert _grade("q3_accumulation", ns) == (3.0, "")


WRONG = [
    (  # summed over locations instead of averaged
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    x = f.flatten(2)\n"
        "    return (x @ x.transpose(1, 2)).flatten(1)",
        "your pooling is 12 times too large",
    ),
    (  # one matrix over the whole batch: the images' locations mixed together
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    n, c = f.shape[:2]\n"
        "    x = f.transpose(0, 1).reshape(c, -1)\n"
        "    return (x @ x.T / x.shape[1]).flatten().repeat(n, 1)",
        "bilinear_pooling differs from the mean of x_l x_lᵀ over locations",
    ),
    (  # the locations' Gram matrix (L x L) instead of the channels' (C x C)
        "q1_bilinear",
        "def bilinear_pooling(f):\n"
        "    x = f.flatten(2)\n"
        "    return (x.transpose(1, 2) @ x / x.shape[2]).flatten(1)",
        "should return (N, C * C) = (3, 25), not (3, 144)",
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
        "signed_sqrt_l2 differs from sign(z) * sqrt(|z|) divided by its row's L2 norm",
    ),
    (  # the mean over locations
        "q2_interaction",
        "_sum = cross_layer_interaction\n"
        "def cross_layer_interaction(**inputs):\n"
        "    return _sum(**inputs) / 12",
        "your interaction is the mean over the 12 locations",
    ),
    (  # the biases forgotten
        "q2_interaction",
        "def cross_layer_interaction(x_a, x_b, weight_a, bias_a, weight_b, bias_b):\n"
        "    p_a = torch.einsum('dc,nchw->ndhw', weight_a, x_a)\n"
        "    p_b = torch.einsum('dc,nchw->ndhw', weight_b, x_b)\n"
        "    return (p_a * p_b).sum(dim=(2, 3))",
        "check that both projections add their bias",
    ),
    (  # no scaling: the sum of the micro-batches' mean losses
        "q3_accumulation",
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        loss_fn(model(x), y).backward()",
        "micro-batches 4 x 2: the gradient of",
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
]


@pytest.mark.parametrize(("grade_id", "change", "message"), WRONG)
def test_plausible_wrong_answers_get_no_marks_and_say_why(
    grade_id: str, change: str, message: str
) -> None:
    points, got = _grade(grade_id, _run(_model(grade_id), change, _probe(grade_id)))
    assert points == 0.0 and message in got, got


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_an_unanswered_question_names_what_is_missing(grade_id: str) -> None:
    """As released, the probe cell stops at the stub before it defines what the checks read."""
    ns = _run(LAB.released(grade_id))
    with pytest.raises(NotImplementedError):
        exec(compile(_probe(grade_id), "<probe>", "exec"), ns)  # noqa: S102
    points, got = _grade(grade_id, ns)
    assert points == 0.0 and got.endswith("not defined where the notebook reaches the checks"), got


def test_a_changed_probe_is_named() -> None:
    ns = _run(_model("q2_interaction"), _probe("q2_interaction"))
    ns["probe_pair"] = {**ns["probe_pair"], "bias_a": torch.zeros(7)}
    points, got = _grade("q2_interaction", ns)
    assert points == 0.0 and "run the cell after your answer unchanged" in got
