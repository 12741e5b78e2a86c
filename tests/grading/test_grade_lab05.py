"""Lab 05's questions graded from a real submission: one question right, two wrong with messages.

The submission runs the whole lab in the smoke profile (ClassNet, proposals, attention,
ObjectNet, PartNet and fusion) in its own kernel, so its values go through the grader's export
and checks as a student's do. The model answers' full marks are checked in-process, question by
question, in `tests/labs/test_lab05_questions.py` (one notebook here, not two: the suite's time
on two cores is tight).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from answered import answered_notebook, grade_in_smoke, with_lines

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "05_opam.ipynb"
Q1, Q2, Q3 = "q1_iou", "q2_object_box", "q3_part_score"
FULL = {Q1: 2.0, Q2: 3.0, Q3: 3.0}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab05")
    right = answered_notebook(SOLUTIONS)
    # every kept pixel's box fails Q2; forgetting the intersection fails Q3
    wrong = with_lines(
        right,
        Q2,
        "def object_box_from(saliency, threshold):\n"
        "    rows, cols = np.nonzero(np.asarray(saliency) >= threshold)\n"
        "    if len(rows) == 0:\n"
        "        return torch.tensor([0.0, 0.0, saliency.shape[1], saliency.shape[0]])\n"
        "    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])",
    )
    wrong = with_lines(
        wrong,
        Q3,
        "def part_score(parts, object_box, saliency):\n"
        "    h, w = saliency.shape\n"
        "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
        "    mask = lambda b: (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])\n"
        "    union = mask(parts[0]) | mask(parts[1])\n"
        "    room = union.sum() - (union & ~mask(object_box)).sum()\n"
        "    if room <= 0:\n"
        "        return float('-inf')\n"
        "    return float(torch.log(room.double()) + torch.log(saliency[union].double().mean()))",
    )
    return grade_in_smoke(SOLUTIONS, {"two_wrong": wrong}, root, total_timeout=300)


def test_lab05_questions_are_graded_right(graded) -> None:
    book = graded.gradebook.set_index("student")
    assert (book["status"] == "ok").all(), book["status"].to_dict()
    assert book.loc["two_wrong", list(FULL)].to_dict() == {**FULL, Q2: 0.0, Q3: 0.0}
    messages = {q.question: q.message for q in graded.result("two_wrong").questions}
    assert "your box holds every kept pixel" in messages[Q2]
    assert "subtract A_I, the pixels inside both parts" in messages[Q3]
