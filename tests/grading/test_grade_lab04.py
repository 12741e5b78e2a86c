"""Lab 04's questions graded from real submissions: full marks, and two failures with messages.

Each submission runs the whole lab in the smoke profile (the source backbone and three models
in two stages, a few seconds each), so this is one `grade_folder` call over two notebooks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from answered import answered_notebook, grade_in_smoke, with_lines

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "04_bcnn_hbp.ipynb"
Q1, Q2, Q3 = "q1_bilinear", "q2_interaction", "q3_accumulation"
FULL = {Q1: 2.0, Q2: 2.0, Q3: 3.0}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab04")
    right = answered_notebook(SOLUTIONS)
    # a large epsilon in the root fails Q1's values; the losses divided by the number of
    # micro-batches fail Q3's uneven split
    wrong = with_lines(
        right,
        Q1,
        "def signed_sqrt_l2(z):\n"
        "    z = torch.sign(z) * torch.sqrt(z.abs() + 0.05)\n"
        "    return z / z.norm(dim=1, keepdim=True)",
    )
    wrong = with_lines(
        wrong,
        Q3,
        "def accumulate_gradients(model, loss_fn, micro_batches):\n"
        "    for x, y in micro_batches:\n"
        "        (loss_fn(model(x), y) / len(micro_batches)).backward()",
    )
    return grade_in_smoke(
        SOLUTIONS, {"all_right": right, "two_wrong": wrong}, root, total_timeout=300
    )


def test_lab04_questions_are_graded_right(graded) -> None:
    book = graded.gradebook.set_index("student")
    assert (book["status"] == "ok").all(), book["status"].to_dict()
    assert book.loc["all_right", list(FULL)].to_dict() == FULL
    assert book.loc["two_wrong", list(FULL)].to_dict() == {**FULL, Q1: 0.0, Q3: 0.0}
    messages = {q.question: q.message for q in graded.result("two_wrong").questions}
    assert "take the square root of |z| itself" in messages[Q1]
    assert "dividing by the number of micro-batches is right only" in messages[Q3]
