"""Grading end to end where a student's own text or copies could mislead the grader."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
import toylab

from labkit.grading.authoring.protocol import BEGIN_HIDDEN
from labkit.grading.scheduler.run import grade_folder

pytestmark = pytest.mark.notebook


def test_quoted_markers_and_copied_answers_grade_right(tmp_path: Path) -> None:
    solutions = toylab.write_solutions(tmp_path / "solutions")
    right = toylab.right(solutions)
    subs = tmp_path / "submissions"
    quoting = copy.deepcopy(right)
    quoted = f"\n# checks start with {BEGIN_HIDDEN}\nmarker = '{BEGIN_HIDDEN}'"
    quoting.cells[2].source += quoted
    toylab.write(quoting, subs / "quoting.ipynb")
    retried = copy.deepcopy(right)
    first_try = nbformat.v4.new_code_cell(
        "# Answer q1_numbers\nsquares = []\ntotal = 0", metadata=retried.cells[2].metadata
    )
    retried.cells.insert(2, first_try)  # an abandoned first try above the right answer
    retried.cells.insert(4, nbformat.v4.new_code_cell("total = int(total)"))  # before checks
    toylab.write(retried, subs / "retried.ipynb")
    run = grade_folder(solutions, subs, workers=2, cell_timeout=60)
    book = run.gradebook.set_index("student")
    for student in ("quoting", "retried"):
        assert (book.loc[student, "status"], book.loc[student, "total"]) == ("ok", 3.0), student
    assert any("graded the values after cell 5" in n for n in run.result("retried").notes)
