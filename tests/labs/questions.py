"""Running a lab's question cells in-process, and grading them as the grader does.

The per-question tests of labs 02 and 03 execute the solutions notebook's own answer cell, an
alternative or wrong variant, and the probe cell after the answer (which runs the student's code
on fixed inputs), then grade the resulting values with the grader's `run_checks`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from labkit.grading.checks import run_checks
from labkit.grading.protocol import Question, marker, parse_solutions
from labkit.grading.release import release_cell


class Lab:
    """One solutions notebook: its cells by question, and its questions' checks."""

    def __init__(self, path: Path) -> None:
        self.nb = nbformat.read(path, as_version=4)
        self.questions: dict[str, Question] = {q.grade_id: q for q in parse_solutions(path).auto}

    def _index(self, grade_id: str) -> int:
        return next(i for i, c in enumerate(self.nb.cells) if marker(c) == ("answer", grade_id))

    def answer(self, grade_id: str) -> str:
        """The model answer cell's code."""
        return self.nb.cells[self._index(grade_id)].source

    def released(self, grade_id: str) -> str:
        """The answer cell as released to students: skeletons whose stubs raise
        NotImplementedError."""
        return release_cell(self.nb.cells[self._index(grade_id)], grade_id).source

    def given(self, grade_id: str) -> str:
        """The answer cell as released to students, its stubs' `raise` lines left out: the
        given lines and skeletons (signatures, docstrings) run, defining nothing yet."""
        lines = self.released(grade_id).split("\n")
        return "\n".join(line for line in lines if line.strip() != "raise NotImplementedError()")

    def probe(self, grade_id: str) -> str:
        """The code cell right after the answer cell: it runs the student's code."""
        return self.nb.cells[self._index(grade_id) + 1].source

    def full(self, grade_id: str) -> float:
        return sum(check.points for check in self.questions[grade_id].checks)

    def grade(self, grade_id: str, namespace: dict) -> tuple[float, str]:
        """Points and message for the values of `namespace`, exactly as the grader checks them."""
        question = self.questions[grade_id]
        return run_checks(question, {n: namespace[n] for n in question.names if n in namespace})


def run_cells(namespace: dict, *sources: str) -> dict:
    """Execute cell sources one after another in `namespace` (changed in place and returned)."""
    for source in sources:
        exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102
    return namespace
