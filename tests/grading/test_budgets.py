"""Time budgets: each question's cells get a multiple of the time the solutions' cells took."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import nbformat
import pytest
import toylab

from labkit.grading.authoring.protocol import parse_solutions
from labkit.grading.scheduler.run import grade_folder
from labkit.grading.worker.driver import Grader
from labkit.grading.worker.jobs import TAIL, Job, Limits
from labkit.grading.worker.steps import plan


@pytest.fixture(scope="module")
def solutions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toylab.write_solutions(tmp_path_factory.mktemp("budgets"))


def test_each_cell_spends_the_budget_of_the_next_answer(solutions: Path) -> None:
    spec = parse_solutions(solutions)
    nb = copy.deepcopy(toylab.right(solutions))
    nb.cells.append(nbformat.v4.new_code_cell("after = 1"))
    steps, unlocated = plan(nb, spec)
    # cells: imports, q1 answer, (checks skipped), doubled, q2 answer; "after" is left out
    assert [(s.index, s.segment, s.question is not None) for s in steps] == [
        (1, "q1_numbers", False),
        (2, "q1_numbers", True),
        (4, "q2_model", False),
        (5, "q2_model", True),
    ]
    assert unlocated == []
    steps, _ = plan(nb, spec, run_all=True)
    assert (steps[-1].source, steps[-1].segment) == ("after = 1", TAIL)


def test_a_step_gets_what_is_left_of_its_budget(solutions: Path, tmp_path: Path) -> None:
    spec = parse_solutions(solutions)
    limits = Limits(total_timeout=100.0, memory_limit=0, cell_timeout=None, budgets={"q1": 8.0})
    job = Job(0, spec, {}, str(tmp_path), str(tmp_path), {}, limits)
    grader = Grader(job, lambda event: None, threading.Thread())
    step = plan(toylab.right(solutions), spec)[0][0]
    step = type(step)(step.index, step.source, None, "q1")
    assert grader.step_limit(step) == (8.0, "budget")
    grader.spent["q1"] = 5.0
    assert grader.step_limit(step) == (3.0, "budget")
    fixed = Job(0, spec, {}, str(tmp_path), str(tmp_path), {}, Limits(100.0, 0, 20.0, None))
    assert Grader(fixed, print, threading.Thread()).step_limit(step) == (20.0, "cell")


@pytest.mark.notebook
def test_an_endless_answer_stops_at_its_budget(solutions: Path, tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    right = toylab.right(solutions)
    toylab.write(right, subs / "alice.ipynb")
    looping = toylab.set_answer(copy.deepcopy(right), "q1_numbers", "while True:\n    pass")
    # and a cell before q2's answer that defines what it should, then never ends: q2 gets 0
    # although its answer cell itself runs fine afterwards
    cell = next(c for c in looping.cells if c.source == "doubled = total * 2")
    cell.source = "doubled = 20\nwhile True:\n    pass"
    toylab.write(looping, subs / "loop.ipynb")
    run = grade_folder(
        solutions, subs, workers=2, budget_factor=2.0, budget_extra_s=4.0, total_timeout=120
    )
    assert set(run.budgets) == {"q1_numbers", "q2_model"}
    assert all(4.0 <= b < 15.0 for b in run.budgets.values()), run.budgets
    book = run.gradebook.set_index("student")
    assert (book.loc["alice", "status"], book.loc["alice", "total"]) == ("ok", 3.0)
    assert book.loc["loop", "status"] == "time-out in q1_numbers; time-out in cell 5"
    assert (book.loc["loop", "q1_numbers"], book.loc["loop", "q2_model"]) == (0.0, 0.0)
    q1, q2 = run.result("loop").questions[:2]
    assert q1.message.startswith("its cells ran past the question's time budget of")
    assert q2.message.startswith("its cells ran past the question's time budget of")
    assert run.warnings == [] or "no sandbox" in run.warnings[0]
