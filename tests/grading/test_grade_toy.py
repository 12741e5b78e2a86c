"""Grading the toy lab end to end: folders, a kernel that ignores interrupts, lost markers, CLI."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import toylab

from labkit.cli import main
from labkit.grading.reports.gradebook import GradingRun
from labkit.grading.scheduler.run import grade_folder, grade_submission

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("toy")
    solutions = toylab.write_solutions(root / "solutions")
    subs = root / "submissions"
    right = toylab.right(solutions)
    toylab.write(right, subs / "alice.ipynb")
    # a folder: the kernel runs in a copy of it, so the notebook can read its files
    folder_nb = copy.deepcopy(right)
    folder_nb.cells.insert(2, nbformat.v4.new_code_cell("data = open('data.txt').read()"))
    toylab.write(folder_nb, subs / "bob" / "lab.ipynb")
    (subs / "bob" / "data.txt").write_text("42\n")
    # an answer that ignores interrupts: the kernel is killed, restarted, the rest replayed
    stubborn = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    toylab.write(
        toylab.set_answer(copy.deepcopy(right), "q1_numbers", stubborn), subs / "stubborn.ipynb"
    )
    # neither grade_id nor marker left: the values are read after the last cell
    lost = copy.deepcopy(right)
    lost.cells[2].metadata = {}
    lost.cells[2].source = lost.cells[2].source.replace("# Answer q1_numbers\n", "")
    toylab.write(lost, subs / "lost.ipynb")
    # cells within the cell time-out that add up past the total: the rest is not graded
    slow = copy.deepcopy(right)
    slow.cells[4:4] = [nbformat.v4.new_code_cell("import time\ntime.sleep(6)") for _ in range(10)]
    toylab.write(slow, subs / "slowpoke.ipynb")
    toylab.write(right, subs / "gus.ipynb")
    (subs / "gus.txt").write_text("not a notebook")
    run = grade_folder(
        solutions,
        subs,
        root / "out",
        workers=2,
        cell_timeout=20,
        total_timeout=50,  # 60 s of sleeping stops the slowpoke; the stubborn one needs a restart
        memory_limit=2.0,
    )
    return run, root


def _row(run: GradingRun, student: str) -> dict:
    return run.gradebook.set_index("student").loc[student].to_dict()


def test_folder_submission_runs_in_a_copy_of_its_folder(graded) -> None:
    run, _ = graded
    assert {r.student for r in run.results} == {
        "alice",
        "bob",
        "stubborn",
        "lost",
        "slowpoke",
        "gus.ipynb",
        "gus.txt",
    }
    for student in ("alice", "bob", "gus.ipynb"):
        row = _row(run, student)
        assert (row["status"], row["q1_numbers"], row["q2_model"]) == ("ok", 1.0, 2.0), student
    assert run.result("bob").notebook == "lab.ipynb"
    assert _row(run, "gus.txt")["status"] == "not a notebook"


def test_kernel_ignoring_interrupts_is_killed_and_the_rest_graded(graded) -> None:
    row = _row(graded[0], "stubborn")
    assert (row["status"], row["q1_numbers"], row["q2_model"]) == (
        "time-out in q1_numbers",
        0.0,
        2.0,
    )


def test_total_time_out_stops_one_submission(graded) -> None:
    run, _ = graded
    result = run.result("slowpoke")
    assert result.status.startswith("total time-out")
    q2 = next(q for q in result.questions if q.question == "q2_model")
    assert q2.points == 0 and q2.message.startswith("not graded: the notebook ran past")


def test_answer_without_marker_is_read_after_the_last_cell(graded) -> None:
    run, _ = graded
    assert _row(run, "lost")["q1_numbers"] == 1.0
    assert run.result("lost").answers["q3_text"] == "Because the sum of 0..4 is 10."


def test_cli_grades_prints_and_merges_marks(tmp_path: Path, capsys) -> None:
    solutions = toylab.write_solutions(tmp_path / "solutions")
    subs = tmp_path / "submissions"
    subs.mkdir()
    toylab.write(nbformat.v4.new_notebook(), subs / "empty.ipynb")
    (subs / "junk.txt").write_text("junk")
    out = tmp_path / "out"
    assert main(["grade", str(solutions), str(subs), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "empty" in printed and "not a notebook" in printed and "gradebook" in printed
    marks = pd.read_csv(out / "manual_marks.csv")
    marks.loc[marks["student"] == "junk", "points"] = 1
    marks.to_csv(tmp_path / "marks.csv", index=False)
    args = [
        "grade",
        str(solutions),
        str(subs),
        "--out",
        str(out),
        "--manual",
        str(tmp_path / "marks.csv"),
    ]
    assert main(args) == 0
    assert "nothing is run again" in capsys.readouterr().out
    book = pd.read_csv(out / "gradebook.csv").set_index("student")
    assert book.loc["junk", "q3_text"] == 1 and book.loc["junk", "total"] == 1
    marks.loc[0, "points"] = 7
    marks.to_csv(tmp_path / "marks.csv", index=False)
    assert main(args) == 2 and "outside 0..2" in capsys.readouterr().out


def test_grade_submission_grades_one_file(tmp_path: Path) -> None:
    solutions = toylab.write_solutions(tmp_path / "solutions")
    notebook = tmp_path / "carol.ipynb"
    notebook.write_text("{ broken")
    result = grade_submission(solutions, notebook)
    assert (result.student, result.status, result.total) == ("carol", "not a notebook", 0.0)
    assert notebook.read_text() == "{ broken"
