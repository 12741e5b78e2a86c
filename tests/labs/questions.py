"""Running a lab's question cells in-process, and grading them as the grader does.

The per-question tests execute the solutions notebook's own answer cell, an alternative or wrong
variant, and the probe cell after the answer (which runs the student's code on fixed inputs),
then grade the resulting values with the grader's `run_checks` and its verdict on the calls the
student's code made (`labkit.grading.worker.provenance`): `run_cells` records them as the grader's
kernel does, every cell that is not one of a lab's own cells counting as the student's.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from labkit.grading.authoring.protocol import Question, marker, parse_solutions
from labkit.grading.authoring.release import release_cell
from labkit.grading.kernel.recorder import Recorder
from labkit.grading.worker.checks import run_checks
from labkit.grading.worker.provenance import bound_names, judge_calls, read_names

RECORD = "__labkit_calls__"  # where `run_cells` keeps the recorded calls in a namespace
STUDENT_FILE = "<student cell>"
LAB_FILE = "<lab cell>"


class Lab:
    """One solutions notebook: its cells by question, and its questions' checks."""

    def __init__(self, path: Path) -> None:
        self.nb = nbformat.read(path, as_version=4)
        spec = parse_solutions(path)
        self.questions: dict[str, Question] = {q.grade_id: q for q in spec.auto}
        _LAB_CELLS.update(spec.lab_cells)

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
        """Points and message for the values of `namespace`, exactly as the grader checks them,
        and no points when the calls `run_cells` recorded break the question's rule."""
        question = self.questions[grade_id]
        values = {n: namespace[n] for n in question.names if n in namespace}
        points, message = run_checks(question, values)
        if RECORD in namespace:
            verdict = judge_calls(namespace[RECORD], question.forbidden, question.allowed)
            if verdict:
                return 0.0, verdict
        return points, message


_LAB_CELLS: set[str] = set()  # every lab cell of the notebooks a `Lab` has read


def run_cells(namespace: dict, *sources: str) -> dict:
    """Execute cell sources one after another in `namespace` (changed in place and returned),
    recording the calls made by the student's code (every source that is not a lab's cell) as
    the grader does; the record accumulates in `namespace[RECORD]`."""
    recorder = Recorder()
    recorder.add_student_files({STUDENT_FILE})
    recorder.start()
    try:
        for source in sources:
            filename = LAB_FILE if source in _LAB_CELLS else STUDENT_FILE
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    finally:
        student = [s for s in sources if s not in _LAB_CELLS]
        read = read_names(s for s in sources if s in _LAB_CELLS)  # the probe's reads
        bound = [n for s in student for n in bound_names(s) if n in read]
        recorder.note_bound(namespace, bound)
        record = recorder.stop()
        before = namespace.get(RECORD)
        if before is not None:
            record = {
                "calls": sorted(set(before["calls"]) | set(record["calls"])),
                "intact": before["intact"] and record["intact"],
                "overflow": before["overflow"] or record["overflow"],
            }
        namespace[RECORD] = record
    return namespace
