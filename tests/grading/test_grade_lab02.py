"""Lab 02's crafted submissions graded in one `grade_folder` call: each graded right, none lost.

The kernels run lab 02's smoke profile; the whole set takes about two minutes on two cores.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from lab02_submissions import SOLUTIONS, TEXT, craft, hidden_lines, protocol_ready

from labkit.grading.scheduler.run import grade_folder

pytestmark = [
    pytest.mark.notebook,
    pytest.mark.skipif(not protocol_ready(), reason="lab 02 does not follow the protocol yet"),
]
CELL_TIMEOUT = 45.0  # the slowest smoke cell (imports and data) takes 10-20 s on two busy cores


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab02")
    submissions = root / "submissions"
    cases = craft(submissions)
    before = _hashes(submissions)
    solutions_before = SOLUTIONS.read_bytes()
    run = grade_folder(
        SOLUTIONS,
        submissions,
        root / "out",
        workers=2,
        cell_timeout=CELL_TIMEOUT,
        total_timeout=400,
        memory_limit=3.0,
        profile="smoke",
    )
    return run, cases, before, _hashes(submissions), submissions, root / "out", solutions_before


def test_every_submission_is_graded_right(graded) -> None:
    run, cases, *_ = graded
    book = run.gradebook.set_index("student")
    assert sorted(book.index) == sorted(c.student for c in cases)
    wrong = []
    for case in cases:
        row = book.loc[case.student]
        got = {q: row[q] for q in case.points}
        if got != case.points or not case.status_matches(row["status"]):
            wrong.append((case.student, got, row["status"], case.points, case.status))
        for question, part in case.messages.items():
            message = next(
                q.message for q in run.result(case.student).questions if q.question == question
            )
            assert part in message, (case.student, question, message)
    assert not wrong, wrong


def test_totals_and_free_text(graded) -> None:
    run, cases, *_ = graded
    book = run.gradebook.set_index("student")
    assert (book["max_points"] == 10).all()
    assert book.loc["all_right", "total"] == 8 and pd.isna(book.loc["all_right", TEXT])
    for case in cases:
        if case.text is not None:
            assert run.result(case.student).answers[TEXT] == case.text


def test_originals_are_byte_identical(graded) -> None:
    run, _, before, after, submissions, _, solutions_before = graded
    assert after == before
    assert SOLUTIONS.read_bytes() == solutions_before
    assert not run.warnings


def test_outputs_written_and_feedback_hides_hidden_checks(graded) -> None:
    run, cases, *_, out, _ = graded
    assert (out / "gradebook.csv").is_file() and (out / "answers.md").is_file()
    book = pd.read_csv(out / "gradebook.csv")
    assert len(book) == len(cases)
    secrets = hidden_lines()
    assert secrets
    for case in cases:
        text = (out / "feedback" / f"{case.student}.md").read_text()
        assert case.student in text
        leaked = [line for line in secrets if line in text]
        assert not leaked, (case.student, leaked)
