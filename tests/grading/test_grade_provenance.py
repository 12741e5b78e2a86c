"""The grader's record of what an answer calls, end to end in real kernels (with and without the
sandbox): aliases, helpers in other cells, earlier imports, labkit, switching the recording off,
code from strings, and a probe cell the student edited."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
import toylab
from answered import answered_notebook

from labkit.grading.scheduler.run import grade_folder, grade_submission

pytestmark = pytest.mark.notebook

NORM = "def norm(v):\n    return (v * v).sum().sqrt()"
PROBE = "norms = [float(norm(torch.tensor(v))) for v in ([3.0, 4.0], [1.0, 2.0, 2.0])]"
VISIBLE = 'assert [round(n, 4) for n in norms] == [5.0, 3.0], "the length of (3, 4) is 5"'
HIDDEN = (
    "# Forbidden calls: torch.linalg.norm, torch.norm, numpy.linalg.norm\nassert len(norms) == 2"
)


def solutions_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["labkit"] = {"lab": "98_norms"}
    nb.cells = [
        nbformat.v4.new_code_cell("import torch"),
        toylab.answer("q_norm", NORM),
        nbformat.v4.new_code_cell(PROBE),
        toylab.checks("q_norm", "norms", VISIBLE, HIDDEN, 2),
    ]
    return nb


def with_answer(nb: nbformat.NotebookNode, body: str, before: str = "") -> nbformat.NotebookNode:
    """A copy of `nb` answering `body`, with a cell of the student's own `before` the answer."""
    nb = toylab.set_answer(copy.deepcopy(nb), "q_norm", body)
    if before:
        nb.cells.insert(1, nbformat.v4.new_code_cell(before))
    return nb


# student -> (answer, a cell of their own before it, points, words the feedback must hold)
CLASS = {
    "right": (NORM, "", 2.0, ""),
    "alias": (
        "from torch.linalg import norm as length\ndef norm(v):\n    return length(v)",
        "",
        0.0,
        "torch.linalg.norm",
    ),
    "helper": (
        "def norm(v):\n    return torch.tensor(helper(v))",
        "import numpy as np\ndef helper(v):\n    return float(np.linalg.norm(np.asarray(v)))",
        0.0,
        "numpy.linalg.norm",
    ),
    "imported_earlier": (
        "def norm(v):\n    return tnorm(v)",
        "from torch import norm as tnorm",
        0.0,
        "torch.norm",
    ),
    "labkit": (
        "import labkit.config\ndef norm(v):\n    labkit.config.seed_everything(0)\n"
        "    return (v * v).sum().sqrt()",
        "",
        0.0,
        "labkit.config.seed_everything",
    ),
    "switched_off": (
        "import sys\ndef norm(v):\n    sys.setprofile(None)\n    return torch.linalg.norm(v)",
        "",
        0.0,
        "sys.setprofile",
    ),
    "from_a_string": (
        "def norm(v):\n    return eval('torch.linalg.norm')(v)",
        "",
        0.0,
        "builtins.eval",
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("norms")
    solutions = toylab.write(solutions_notebook(), root / "solutions" / "98_norms.ipynb")
    right = answered_notebook(solutions)
    subs = root / "submissions"
    for student, (body, before, _, _) in CLASS.items():
        toylab.write(with_answer(right, body, before), subs / f"{student}.ipynb")
    # a right answer whose probe cell was edited into wrong values: the grader's probe runs
    edited = copy.deepcopy(right)
    edited.cells[2].source = "norms = [1.0, 1.0]"
    toylab.write(edited, subs / "edited_probe.ipynb")
    # a wrong answer whose probe was edited into the expected values: still wrong
    faked = with_answer(right, "def norm(v):\n    return v.sum()")
    faked.cells[2].source = "norms = [5.0, 3.0]"
    toylab.write(faked, subs / "faked_probe.ipynb")
    run = grade_folder(solutions, subs, root / "out", workers=2, cell_timeout=30)
    return run, solutions, right, root


@pytest.mark.parametrize("student", list(CLASS))
def test_what_the_answer_called_decides(graded, student: str) -> None:
    run = graded[0]
    result = next(q for q in run.result(student).questions if q.question == "q_norm")
    _, _, points, words = CLASS[student]
    assert result.points == points, result.message
    assert words in result.message


def test_an_edited_probe_changes_nothing(graded) -> None:
    run = graded[0]
    edited = next(q for q in run.result("edited_probe").questions if q.question == "q_norm")
    faked = next(q for q in run.result("faked_probe").questions if q.question == "q_norm")
    assert edited.points == 2.0, edited.message
    assert faked.points == 0.0 and "the length of (3, 4) is 5" in faked.message


def test_the_recording_works_without_the_sandbox(graded, tmp_path: Path) -> None:
    _, solutions, right, _ = graded
    body, before, _, words = CLASS["alias"]
    sub = toylab.write(with_answer(right, body, before), tmp_path / "alias.ipynb")
    result = grade_submission(solutions, sub, sandbox="none", cell_timeout=30)
    graded_q = next(q for q in result.questions if q.question == "q_norm")
    assert graded_q.points == 0.0 and words in graded_q.message
