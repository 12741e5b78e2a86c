"""One grading run's results as the tables and files an instructor reads.

`GradingRun` holds the lab's questions and one `SubmissionResult` per student; the gradebook,
the free-text answers and the marks template are built from them on demand, and `write` puts
every file in an output folder atomically (results.json can be loaded back to merge hand marks
later without running anything again).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.atomic import write_text_atomic
from labkit.grading.authoring.protocol import LabSpec
from labkit.grading.reports.feedback import answers_markdown, feedback_markdown
from labkit.grading.reports.marks import marks_template, read_manual_marks
from labkit.grading.reports.results import SubmissionResult


def slug(name: str) -> str:
    """A file-name-safe version of a student's name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


@dataclass
class GradingRun:
    """Everything one `grade_folder` call found; tables are built from `results` on demand."""

    spec: LabSpec
    results: list[SubmissionResult]
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    budgets: dict[str, float] | None = None  # seconds per question ("": after the last one)

    @property
    def lab(self) -> str:
        return self.spec.lab or Path(self.spec.source).stem

    @property
    def gradebook(self) -> pd.DataFrame:
        """One row per student: status, points per question, total, maximum, sandbox."""
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"student": r.student, "status": r.status}
            row.update(
                {q.question: (math.nan if q.points is None else q.points) for q in r.questions}
            )
            row.update(
                total=r.total,
                max_points=r.max_points,
                seconds=round(r.seconds, 1),
                sandbox=r.sandbox,
                file=r.path,
            )
            rows.append(row)
        fixed = ["total", "max_points", "seconds", "sandbox", "file"]
        book = pd.DataFrame(rows, columns=["student", "status", *self.spec.max_points, *fixed])
        book.attrs["max_points"] = self.spec.max_points
        book.attrs["manual"] = [q.grade_id for q in self.spec.manual]
        return book

    @property
    def answers(self) -> pd.DataFrame:
        """Free-text answers side by side: one row per student, one column per question."""
        manual = [q.grade_id for q in self.spec.manual]
        rows = [
            {"student": r.student, **{q: r.answers.get(q, "") for q in manual}}
            for r in self.results
        ]
        return pd.DataFrame(rows, columns=["student", *manual])

    def result(self, student: str) -> SubmissionResult:
        """The result of `student`; KeyError names a student who is not in this run."""
        found = next((r for r in self.results if r.student == student), None)
        if found is None:
            raise KeyError(f"no submission from {student!r} in this run")
        return found

    def feedback(self, student: str) -> str:
        """The Markdown feedback of one student: points, messages, never the hidden checks."""
        return feedback_markdown(self.result(student), self.lab)

    def answers_markdown(self) -> str:
        """Every student's answer to each hand-marked question, one question after the other."""
        return answers_markdown(self.spec, self.lab, self.results)

    def marks_template(self) -> pd.DataFrame:
        """Rows to fill in by hand: student, question, points (blank), max_points, comment."""
        return marks_template(self.spec, [r.student for r in self.results])

    def merge_manual(self, marks: Path | str | pd.DataFrame) -> GradingRun:
        """Fill hand marks into the hand-marked questions (validated; see `read_manual_marks`)."""
        manual = {q.grade_id: q.points for q in self.spec.manual}
        found = read_manual_marks(marks, [r.student for r in self.results], manual)
        for (student, question), (points, comment) in found.items():
            q = next(q for q in self.result(student).questions if q.question == question)
            q.points, q.comment = points, comment
        return self

    def write(self, out_dir: Path) -> list[Path]:
        """Gradebook, results, feedback per student, answers sheet, marks template (atomic)."""
        out_dir = Path(out_dir)
        written = [
            write_text_atomic(out_dir / "gradebook.csv", self.gradebook.to_csv(index=False)),
            write_text_atomic(out_dir / "results.json", json.dumps(self.to_dict(), indent=1)),
            write_text_atomic(out_dir / "answers.csv", self.answers.to_csv(index=False)),
            write_text_atomic(out_dir / "answers.md", self.answers_markdown()),
        ]
        names = {r.student: slug(r.student) for r in self.results}
        for student, name in names.items():
            unique = (
                name
                if list(names.values()).count(name) == 1
                else f"{name}-{hashlib.sha1(student.encode()).hexdigest()[:8]}"
            )
            written.append(
                write_text_atomic(out_dir / "feedback" / f"{unique}.md", self.feedback(student))
            )
        template = out_dir / "manual_marks.csv"
        if not template.exists():  # never overwrite marks an instructor has started
            written.append(write_text_atomic(template, self.marks_template().to_csv(index=False)))
        return written

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "seconds": self.seconds,
            "warnings": self.warnings,
            "budgets": self.budgets,
        }

    @classmethod
    def load(cls, out_dir: Path) -> GradingRun:
        """The run an earlier `write(out_dir)` saved (from its results.json)."""
        data = json.loads((Path(out_dir) / "results.json").read_text(encoding="utf-8"))
        return cls(
            LabSpec.from_dict(data["spec"]),
            [SubmissionResult.from_dict(r) for r in data["results"]],
            data.get("seconds", 0.0),
            data.get("warnings", []),
            data.get("budgets"),
        )
