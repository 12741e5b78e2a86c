"""Lab 01's questions graded from real submissions: full marks, three slips with messages, and
three shortcuts whose feedback names what they called.

The graded questions all stand before the lab's training (question 4's checks are the last), so
the grader runs each submission only up to there: one `grade_folder` call over three notebooks,
each a kernel that imports torch and runs the first two dozen cells. The two written questions
are left for hand marking, their text read from each submission as it stands.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import nbformat
import pytest
import slips
from answered import answered_notebook, grade_in_smoke, with_lines

from labkit.grading.authoring.protocol import marker

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "01_vgg_receptive_fields.ipynb"
Q1, Q2, Q4 = "q1_output_size", "q2_receptive_field", "q4_fc_to_conv"
Q3, Q5 = "q3_why_3x3", "q5_evaluations"  # written, marked by hand
FULL = {Q1: 2.0, Q2: 3.0, Q4: 2.0}
STUDENT_Q3 = "Three 3 x 3 layers see 7 x 7 with 27C² weights instead of 49C², and three ReLUs."

pytestmark = pytest.mark.notebook


def with_text(nb: nbformat.NotebookNode, grade_id: str, text: str) -> nbformat.NotebookNode:
    """A copy of `nb` whose written answer `grade_id` is `text` (its marker line kept)."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if marker(c) == ("answer", grade_id))
    cell.source = f"<!-- Answer {grade_id} -->\n{text}"
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab01")
    right = answered_notebook(SOLUTIONS)
    # three slips a student makes: the dilation ignored in the output size, the field grown by
    # each layer's output jump instead of its input's, the linear layer's bias not copied
    three = with_lines(right, Q1, slips.SIZE_WITHOUT_DILATION)
    three = with_lines(three, Q2, slips.FIELD_BY_OUTPUT_JUMP)
    three = with_lines(three, Q4, slips.CONV_WITHOUT_BIAS)
    three = with_text(three, Q3, STUDENT_Q3)
    # three shortcuts: a layer measuring the size, labkit's table imported in a cell of the
    # student's own, labkit's private helper bound to the answer's name
    shortcuts = with_lines(
        right,
        Q1,
        "def output_size(n, kernel, stride=1, padding=0, dilation=1):\n"
        "    layer = nn.Conv2d(1, 1, kernel, stride, padding, dilation)\n"
        "    return layer(torch.zeros(1, 1, n, n)).shape[-1]",
    )
    first_answer = next(i for i, c in enumerate(shortcuts.cells) if marker(c) == ("answer", Q1))
    shortcuts.cells.insert(
        first_answer,
        nbformat.v4.new_code_cell(
            "from labkit.vgg.receptive_field import receptive_field_table as rf"
        ),
    )
    shortcuts = with_lines(
        shortcuts,
        Q2,
        "def receptive_fields(layers):\n"
        "    chain = nn.Sequential(*[nn.Conv2d(3, 3, k, s, dilation=d) for k, s, d in layers])\n"
        "    table = rf(chain, 512)\n"
        "    return list(zip(table['receptive field'], table['jump']))",
    )
    shortcuts = with_lines(
        shortcuts, Q4, "from labkit.vgg.dense_evaluation import _as_conv as fc_to_conv"
    )
    run = grade_in_smoke(
        SOLUTIONS,
        {"all_right": right, "three_slips": three, "three_shortcuts": shortcuts},
        root,
        total_timeout=400,
    )
    return run, root / "out"


def test_lab01_questions_are_graded_right(graded) -> None:
    run, _ = graded
    book = run.gradebook.set_index("student")
    assert (book["status"] == "ok").all(), book["status"].to_dict()
    assert book.loc["all_right", list(FULL)].to_dict() == FULL
    assert book.loc["three_slips", list(FULL)].to_dict() == {Q1: 0.0, Q2: 0.0, Q4: 0.0}
    # the written questions wait for hand marks: no points yet, 2 each
    assert all(math.isnan(book.loc[s, q]) for s in book.index for q in (Q3, Q5))
    assert book.loc["three_shortcuts", list(FULL)].to_dict() == {Q1: 0.0, Q2: 0.0, Q4: 0.0}
    assert (book["max_points"] == 11).all()
    assert book["total"].to_dict() == {"all_right": 7.0, "three_slips": 0.0, "three_shortcuts": 0.0}
    assert all(not q.message for q in run.result("all_right").questions)
    messages = {q.question: q.message for q in run.result("three_slips").questions}
    assert "your sizes ignore the dilation" in messages[Q1]
    assert "vgg16: your fields use each layer's own (output) jump" in messages[Q2]
    assert "copy the linear layer's bias" in messages[Q4]
    messages = {q.question: q.message for q in run.result("three_shortcuts").questions}
    assert "your answer calls torch.nn.modules.conv.Conv2d" in messages[Q1]
    assert "your answer calls labkit.vgg.receptive_field.receptive_field_table" in messages[Q2]
    assert "labkit.vgg.dense_evaluation._as_conv" in messages[Q4]


def test_lab01_written_answers_and_feedback(graded) -> None:
    run, out = graded
    right, slipped = run.result("all_right").answers, run.result("three_slips").answers
    assert right[Q3].startswith("*A model answer.*")
    assert "(c) A deep unit's receptive field" in right[Q5]
    assert slipped[Q3] == STUDENT_Q3 and slipped[Q5] == right[Q5]
    text = (out / "feedback" / "three_slips.md").read_text()
    assert "Points: 0 / 11 (4 still to be marked by hand)" in text
    assert "your sizes ignore the dilation" in text and "Marked by hand; not marked yet." in text
    assert STUDENT_Q3 in (out / "answers.md").read_text()
