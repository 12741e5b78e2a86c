"""Lab 05's questions graded from a real submission: two shortcuts and a slip, each named.

The submission runs the whole lab in the smoke profile (ClassNet, proposals, attention,
ObjectNet, PartNet and fusion) in its own kernel, so its values and the calls its code makes go
through the grader's export, recording and checks as a student's do: Question 1 hands over
torchvision's `box_iou` under the answer's name, Question 2 calls scipy's labelling, Question 3
forgets the intersection. The model answers' full marks, and every other shortcut and slip, are
checked in-process, question by question, in `tests/labs/test_lab05_questions.py` (one notebook
here, not two: the suite's time on two cores is tight).
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
    # torchvision's box_iou as the answer to Q1, scipy's labelling in Q2, no intersection in Q3
    wrong = with_lines(right, Q1, "from torchvision.ops import box_iou as iou")
    wrong = with_lines(
        wrong,
        Q2,
        "from scipy import ndimage\n"
        "_own = object_box_from\n"
        "def object_box_from(saliency, threshold):  # right boxes, but scipy labels the regions\n"
        "    ndimage.label(np.asarray(saliency) >= threshold, structure=np.ones((3, 3)))\n"
        "    return _own(saliency, threshold)",
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
    return grade_in_smoke(SOLUTIONS, {"shortcuts": wrong}, root, total_timeout=300)


def test_lab05_questions_are_graded_right(graded) -> None:
    book = graded.gradebook.set_index("student")
    assert (book["status"] == "ok").all(), book["status"].to_dict()
    assert book.loc["shortcuts", list(FULL)].to_dict() == {Q1: 0.0, Q2: 0.0, Q3: 0.0}
    messages = {q.question: q.message for q in graded.result("shortcuts").questions}
    assert "torchvision.ops.boxes.box_iou" in messages[Q1], messages[Q1]
    assert "scipy.ndimage" in messages[Q2] and "label" in messages[Q2], messages[Q2]
    assert "subtract A_I, the pixels inside both parts" in messages[Q3]
