"""Which cells of a submission run, in which order, and after which each question is graded.

Checks cells never run (the grader runs the solutions' own). Each code question is exported
and checked after the last cell that runs before its checks cell (`Located.graded_at`, from
`labkit.grading.authoring.locate`); every cell spends the time budget of the question graded
next. Cells after the last graded one
cannot change a grade and are left out unless asked for.

A question with a probe (the solutions' cells between its answer and its checks, which run the
student's code on fixed inputs) is exported after the grader's own copy of the probe, run right
before the export: a student's edited probe cell runs as the student's code, and its values are
replaced by the original's. An unchanged copy in the submission is not run twice.

Each step says whose code it is: "student" (an answer cell, or a cell whose source is not one of
the lab's), "lab" or "probe"; the grader records what the student's code calls from a question's
answer cell (`opens`) to its export.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.grading.authoring.locate import Located, locate
from labkit.grading.authoring.protocol import LabSpec, Question
from labkit.grading.worker.jobs import TAIL


@dataclass(frozen=True)
class Step:
    """One code cell to run: its index, its code, the question graded after it, its budget key."""

    index: int
    source: str
    question: Question | None = None  # exported and checked after this cell
    segment: str = TAIL  # the grade_id of the question whose budget it spends
    answer: bool = False  # the question's answer cell (else the last cell before its checks)
    origin: str = "lab"  # whose code: "student", "lab" or "probe" (the grader's copy)
    opens: str | None = None  # the grade_id whose answer cell this is: recording starts here

    @property
    def label(self) -> str:
        """How feedback names the cell: cells count from 1 at the top, markdown included."""
        if self.origin == "probe":
            return f"the cell after the answer to {self.segment} (the grader's copy)"
        if self.opens is not None:  # an answer cell, whether or not its values export after it
            return self.opens
        if self.question is None:
            return f"cell {self.index + 1}"
        if self.answer:
            return self.question.grade_id
        return f"cell {self.index + 1} (the last before the checks of {self.question.grade_id})"


def _export_points(located: Located, spec: LabSpec, runnable: list[int]) -> dict[int, Question]:
    """The cell after which each code question's values are exported: the last cell that runs
    at or before `located.graded_at`. Two questions never share one: the question whose checks
    come later takes the last free cell before it, down to its own answer cell, else is read
    after the last cell."""
    points: dict[int, Question] = {}
    located_first = sorted(
        (q for q in spec.auto if q.grade_id in located.graded_at),
        key=lambda q: located.graded_at[q.grade_id],
    )
    for question in located_first:  # the question whose checks come first chooses first
        at = located.graded_at[question.grade_id]
        answer = located.answers[question.grade_id]
        candidates = [i for i in runnable if answer is not None and answer <= i <= at]
        free = [i for i in candidates if i not in points]
        if free:
            points[free[-1]] = question
    return points


def plan(nb: dict, spec: LabSpec, run_all: bool = False) -> tuple[list[Step], list[Question]]:
    """The cells to run in order (checks cells left out) and the questions without an answer cell.

    Cells after the last answer cell cannot change a grade, so they are left out unless `run_all`
    (or an answer cell is missing: then its values are read after the last cell).
    """
    located = locate(nb, spec)
    runnable = [
        (i, cell.get("source", ""))
        for i, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code"
        and i not in located.skip
        and cell.get("source", "").strip()
    ]
    by_cell = _export_points(located, spec, [i for i, _ in runnable])
    lab_cells = set(spec.lab_cells)
    opens = {i: q for q, i in located.answers.items() if i is not None}

    def step(index: int, source: str, segment: str = TAIL) -> Step:
        origin = "student" if index in opens or source not in lab_cells else "lab"
        return Step(index, source, None, segment, origin=origin, opens=opens.get(index))

    steps: list[Step] = []
    pending: list[tuple[int, str]] = []
    for index, source in runnable:
        pending.append((index, source))
        if index not in by_cell:
            continue
        question = by_cell[index]
        answer_at = located.answers[question.grade_id]
        probe = set(question.probe)
        for i, s in pending:
            if s in probe and answer_at is not None and i > answer_at:
                continue  # an unchanged copy of the probe: the grader's own copy runs below
            steps.append(step(i, s, question.grade_id))
        pending = []
        if question.probe:
            *first, last = question.probe
            steps += [Step(index, p, None, question.grade_id, origin="probe") for p in first]
            steps.append(Step(index, last, question, question.grade_id, origin="probe"))
        else:
            exported = steps.pop()
            answer = exported.index == answer_at
            steps.append(replace(exported, question=question, answer=answer))
    unlocated = [q for q in spec.auto if q not in by_cell.values()]
    if run_all or unlocated or not steps:
        steps += [step(i, s) for i, s in pending]
    return steps, unlocated
