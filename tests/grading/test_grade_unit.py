"""Checks in the grader, feedback, hand marks and atomic writes, without any kernel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import toylab

from labkit.grading.checks import run_checks
from labkit.grading.export import Missing
from labkit.grading.gradebook import GradingRun
from labkit.grading.marks import merge_manual_marks
from labkit.grading.protocol import Check, Question, parse_solutions
from labkit.grading.results import QuestionResult, SubmissionResult
from labkit.models import densenet_bc


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):
    return parse_solutions(toylab.write_solutions(tmp_path_factory.mktemp("toy")))


def test_checks_pass_and_fail_with_visible_messages(spec) -> None:
    q1, q2 = spec.auto
    squares = [0, 1, 4, 9, 16]
    assert run_checks(q1, {"total": 10, "squares": squares}) == (1.0, "")
    assert run_checks(q1, {"total": "10", "squares": squares}) == (
        0.0,
        "total should be a whole number",
    )
    assert run_checks(q1, {"total": Missing("total"), "squares": squares})[1] == (
        "total not defined where the notebook reaches the checks"
    )
    assert run_checks(q2, {"net": densenet_bc(block_config=(1, 1), growth_rate=4)}) == (2.0, "")
    assert run_checks(q2, {"net": densenet_bc(block_config=(1, 2), growth_rate=4)}) == (
        0.0,
        "net needs 6 convolution layers",
    )


def test_hidden_failures_never_show_hidden_code(spec) -> None:
    q1 = spec.auto[0]
    points, message = run_checks(q1, {"total": 10, "squares": [1, 2]})
    assert (points, message) == (0.0, "a hidden check failed")
    check = Check(
        "h",
        1.0,
        "x = len(value)\n### BEGIN HIDDEN TESTS\nassert x == 42, f'x is {x}'\n### END HIDDEN TESTS",
        (2, 3, 4),
    )
    question = Question("h", "code", 1.0, (check,), ("value",))
    assert run_checks(question, {"value": [1]}) == (0.0, "a hidden check failed")  # not "x is 1"


def test_visible_errors_are_explained() -> None:
    check = Check("v", 1.0, "assert len(value) == 2\nassert value[0] == 1", ())
    question = Question("v", "code", 1.0, (check,), ("value",))
    assert run_checks(question, {"value": None})[1].startswith("TypeError: object of type")
    assert run_checks(question, {"value": [0, 1]})[1] == "check failed: assert value[0] == 1"


def test_checks_cells_are_all_or_nothing_and_add_up() -> None:
    checks = (
        Check("a", 1.0, "assert value > 0, 'positive'", ()),
        Check("b", 2.0, "assert value > 5, 'above 5'", ()),
    )
    question = Question("two", "code", 3.0, checks, ("value",))
    assert run_checks(question, {"value": 3}) == (1.0, "above 5")
    assert run_checks(question, {"value": 9}) == (3.0, "")


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
