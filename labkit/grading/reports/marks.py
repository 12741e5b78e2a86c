"""Hand marks: the template an instructor fills in, read back with every row validated.

A marks table has one row per (student, hand-marked question): `student`, `question`, `points`
(blank: not marked yet), `max_points`, `comment`. `labkit grade` writes it as manual_marks.csv;
`labkit grade --manual FILE` merges it without running anything again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from labkit.grading.authoring.protocol import LabSpec

MARKS_COLUMNS = ["student", "question", "points", "max_points", "comment"]


def marks_template(spec: LabSpec, students: Sequence[str]) -> pd.DataFrame:
    """Rows to fill in by hand: student, question, points (blank), max_points, comment."""
    rows = [
        {"student": s, "question": q.grade_id, "points": "", "max_points": q.points, "comment": ""}
        for q in spec.manual
        for s in students
    ]
    return pd.DataFrame(rows, columns=MARKS_COLUMNS)


def read_manual_marks(
    marks: Path | str | pd.DataFrame, students: list[str], max_points: Mapping[str, float]
) -> dict[tuple[str, str], tuple[float, str]]:
    """`{(student, question): (points, comment)}` from a marks table; blank points are skipped.

    A ValueError names the row (as numbered in the file, header = row 1) of an unknown student
    or question, points that are not a number, negative or above the question's maximum, or a
    (student, question) marked twice.
    """
    where = "marks" if isinstance(marks, pd.DataFrame) else str(marks)
    table = (
        marks
        if isinstance(marks, pd.DataFrame)
        else pd.read_csv(marks, dtype=str, keep_default_na=False)
    )
    missing = {"student", "question", "points"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{where}: columns {sorted(missing)} are missing; start from "
            "manual_marks.csv written by `labkit grade`"
        )
    found: dict[tuple[str, str], tuple[float, str]] = {}
    for number, row in enumerate(table.to_dict("records"), start=2):
        student, question = str(row["student"]).strip(), str(row["question"]).strip()
        text = "" if pd.isna(row["points"]) else str(row["points"]).strip()
        if not text:
            continue
        if student not in students:
            raise ValueError(f"{where}, row {number}: unknown student {student!r}")
        if question not in max_points:
            raise ValueError(
                f"{where}, row {number}: unknown question {question!r}; hand-marked "
                f"questions: {', '.join(max_points) or 'none'}"
            )
        try:
            points = float(text)
        except ValueError:
            raise ValueError(f"{where}, row {number}: points {text!r} is not a number") from None
        if not 0 <= points <= max_points[question]:
            raise ValueError(
                f"{where}, row {number}: {points:g} points for {question} is outside "
                f"0..{max_points[question]:g}"
            )
        if (student, question) in found:
            raise ValueError(f"{where}, row {number}: {student} / {question} is marked twice")
        comment = row.get("comment", "")
        found[(student, question)] = (points, "" if pd.isna(comment) else str(comment).strip())
    return found


def merge_manual_marks(
    gradebook: pd.DataFrame,
    marks: Path | str | pd.DataFrame,
    max_points: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A copy of `gradebook` with hand marks filled in and totals recomputed.

    `max_points` maps each hand-marked question to its maximum; by default it is read from the
    gradebook's `attrs` (set by `GradingRun.gradebook`).
    """
    if max_points is None:
        every = gradebook.attrs.get("max_points", {})
        max_points = {q: every[q] for q in gradebook.attrs.get("manual", [])}
        if not max_points:
            raise ValueError(
                "the gradebook does not say which questions are marked by hand; "
                "pass max_points={question: maximum}"
            )
    book = gradebook.copy()
    found = read_manual_marks(marks, list(book["student"]), max_points)
    for (student, question), (points, _) in found.items():
        book.loc[book["student"] == student, question] = points
    questions = list(gradebook.attrs.get("max_points", max_points))
    book["total"] = book[[q for q in questions if q in book.columns]].sum(axis=1, skipna=True)
    return book
