"""A grading run's tables and files: the gradebook, feedback, hand marks and atomic writes,
from results made by hand (no kernel)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import toylab

from labkit.grading.authoring.protocol import parse_solutions
from labkit.grading.reports.gradebook import GradingRun
from labkit.grading.reports.marks import merge_manual_marks
from labkit.grading.reports.results import QuestionResult, SubmissionResult


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):
    return parse_solutions(toylab.write_solutions(tmp_path_factory.mktemp("toy")))


def _run(spec) -> GradingRun:
    def result(student: str, q1: float) -> SubmissionResult:
        questions = [
            QuestionResult("q1_numbers", q1, 1.0, "" if q1 else "a hidden check failed"),
            QuestionResult("q2_model", 2.0, 2.0),
            QuestionResult("q3_text", None, 2.0, manual=True),
        ]
        return SubmissionResult(
            student,
            f"{student}.ipynb",
            questions=questions,
            answers={"q3_text": f"{student} says why"},
        )

    return GradingRun(spec, [result("alice", 1.0), result("bob", 0.0)])


def test_gradebook_answers_and_feedback(spec) -> None:
    run = _run(spec)
    book = run.gradebook.set_index("student")
    assert book.loc["alice", "total"] == 3 and book.loc["bob", "max_points"] == 5
    assert pd.isna(book.loc["alice", "q3_text"])
    assert list(run.answers["q3_text"]) == ["alice says why", "bob says why"]
    feedback = run.feedback("bob")
    assert "Points: 2 / 5 (2 still to be marked by hand)" in feedback
    assert "a hidden check failed" in feedback and "assert total == 10" not in feedback
    assert "### bob" in run.answers_markdown()


def test_manual_marks_merge(spec, tmp_path: Path) -> None:
    run = _run(spec)
    marks = tmp_path / "marks.csv"
    template = run.marks_template()
    assert list(template.columns) == ["student", "question", "points", "max_points", "comment"]
    template.loc[0, ["points", "comment"]] = ["1.5", "good point on sums"]  # alice; bob blank
    template.to_csv(marks, index=False)
    book = merge_manual_marks(run.gradebook, marks).set_index("student")
    assert book.loc["alice", "q3_text"] == 1.5 and book.loc["alice", "total"] == 4.5
    assert pd.isna(book.loc["bob", "q3_text"]) and book.loc["bob", "total"] == 2
    run.merge_manual(marks)
    assert "good point on sums" in run.feedback("alice")
    assert run.gradebook.set_index("student").loc["alice", "total"] == 4.5


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"student": "zoe", "question": "q3_text", "points": "1"}, "row 2: unknown student 'zoe'"),
        ({"student": "bob", "question": "q9", "points": "1"}, "row 2: unknown question 'q9'"),
        ({"student": "bob", "question": "q1_numbers", "points": "1"}, "unknown question"),
        ({"student": "bob", "question": "q3_text", "points": "3"}, "outside 0..2"),
        ({"student": "bob", "question": "q3_text", "points": "lots"}, "is not a number"),
    ],
)
def test_manual_marks_errors_name_the_row(spec, tmp_path: Path, row: dict, error: str) -> None:
    marks = tmp_path / "marks.csv"
    pd.DataFrame([row]).to_csv(marks, index=False)
    with pytest.raises(ValueError, match=error):
        merge_manual_marks(_run(spec).gradebook, marks)


def test_manual_marks_twice_is_an_error(spec) -> None:
    row = {"student": "bob", "question": "q3_text", "points": "1"}
    with pytest.raises(ValueError, match="row 3: bob / q3_text is marked twice"):
        merge_manual_marks(_run(spec).gradebook, pd.DataFrame([row, row]))


def test_write_and_load_round_trip(spec, tmp_path: Path) -> None:
    run = _run(spec)
    run.write(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "gradebook.csv",
        "results.json",
        "answers.csv",
        "answers.md",
        "feedback",
        "manual_marks.csv",
    } <= names
    (tmp_path / "manual_marks.csv").write_text("student,question,points\nbob,q3_text,2\n")
    run.write(tmp_path)  # a second run never overwrites marks already started
    assert "bob,q3_text,2" in (tmp_path / "manual_marks.csv").read_text()
    loaded = GradingRun.load(tmp_path)
    assert loaded.spec == spec and loaded.results == run.results
    assert not [p for p in tmp_path.rglob("*.tmp")]
