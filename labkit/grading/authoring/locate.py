"""Finding each question's cells again in a submission.

A student's notebook is edited: cells move, editors drop or duplicate metadata (VS Code, Colab).
`locate` finds each question's answer cell by its nbgrader grade_id, else by its marker line
(see `labkit.grading.authoring.protocol`), and lists the checks cells the grader must never run;
`answer_text` reads a hand-marked answer. Only metadata and first lines decide; text anywhere
else in a cell (a marker quoted in a comment or a string) never changes how it is found.

A code answer copied into several cells (an abandoned first try above the right one) is graded
on the values the notebook holds when it reaches the question's checks cell: `graded_at`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from labkit.grading.authoring.protocol import (
    ANSWER_STUB,
    CODE_STUB,
    LabSpec,
    marker,
    nbgrader_meta,
)


@dataclass
class Located:
    """Where a submission keeps each question, and which of its cells must never run."""

    answers: dict[str, int | None]  # question grade_id -> cell index (None: not found)
    # code question grade_id -> the last cell whose effects count: values are exported after it
    graded_at: dict[str, int] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)  # checks cells (the student's copy is untrusted)
    other_ids: set[str] = field(default_factory=set)  # ids of markers/metadata not in this lab
    notes: list[str] = field(default_factory=list)

    @property
    def found_any(self) -> bool:
        """At least one question's answer cell was found."""
        return any(i is not None for i in self.answers.values())


def _choose(candidates: list[int], with_marker: Iterable[int]) -> int | None:
    """The cell for one grade_id: the first candidate whose marker agrees, else the first."""
    with_marker = set(with_marker)
    return next((i for i in candidates if i in with_marker), candidates[0] if candidates else None)


def locate(nb: dict, spec: LabSpec) -> Located:
    """Find each question's answer cell by metadata grade_id, else by its marker line.

    A code answer in several cells (a copied cell) is graded after the last cell before the
    question's checks cell. When the checks cell is gone, after the last cell before the next
    question's answer or checks cell (or the notebook's last cell): a lab's probe cell, which
    runs the student's code on the checks' inputs, sits between an answer and its checks. A
    text answer in several cells: the one whose marker also matches, else the first. Checks
    cells, found by metadata or their marker line, are listed in `skip`: they are the student's
    copy, and the grader runs the solutions' checks instead.
    """
    cells = nb.get("cells", [])
    checks_ids = {c.grade_id for q in spec.questions for c in q.checks}
    checks_of = {c.grade_id: q.grade_id for q in spec.questions for c in q.checks}
    checks_at: dict[str, list[int]] = {}  # question grade_id -> its checks cells
    wanted = {q.grade_id: ("markdown" if q.kind == "text" else "code") for q in spec.questions}
    by_meta: dict[str, list[int]] = {}
    by_marker: dict[str, list[int]] = {}
    skip, seen_ids = set(), set()
    for index, cell in enumerate(cells):
        meta, mark = nbgrader_meta(cell), marker(cell)
        grade_id = meta.get("grade_id")
        if isinstance(grade_id, str):
            seen_ids.add(grade_id)
        if mark:
            seen_ids.add(mark[1])
        answer_meta = bool(meta.get("solution")) and grade_id in wanted
        if (
            cell.get("cell_type") == "code"
            and not answer_meta
            and (
                grade_id in checks_ids
                or (meta.get("grade") and not meta.get("solution"))
                or (mark and mark[0] == "checks")
            )
        ):
            skip.add(index)
            question = checks_of.get(grade_id) or (mark[1] if mark else None)
            if question:
                checks_at.setdefault(question, []).append(index)
            continue
        if grade_id in wanted and cell.get("cell_type") == wanted[grade_id]:
            by_meta.setdefault(grade_id, []).append(index)
        if mark and mark[0] == "answer" and mark[1] in wanted:
            by_marker.setdefault(mark[1], []).append(index)
    answers, graded_at, notes = {}, {}, []
    # where each question's section ends when its checks cell is gone: before the next cell that
    # belongs to another question (its answer or checks), else at the notebook's end
    boundaries = sorted(
        {i for ids in (by_meta, by_marker) for cells_of in ids.values() for i in cells_of}
        | {i for at in checks_at.values() for i in at}
    )
    for grade_id, kind in wanted.items():
        meta_cells, marker_cells = by_meta.get(grade_id, []), by_marker.get(grade_id, [])
        if kind == "markdown":
            chosen = _choose(meta_cells, marker_cells) if meta_cells else _choose(marker_cells, ())
            answers[grade_id] = chosen
            continue
        copies = sorted(set(meta_cells) | set(marker_cells))
        if not copies:
            answers[grade_id] = None
            continue
        later_checks = [i for i in checks_at.get(grade_id, []) if i > copies[0]]
        if later_checks:
            last = later_checks[0] - 1
        else:  # no checks cell: the question's section runs to the next question's cells
            following = [i for i in boundaries if i > copies[-1] and i not in copies]
            last = following[0] - 1 if following else len(cells) - 1
        answers[grade_id] = max(i for i in copies if i <= last)
        graded_at[grade_id] = last
        if len(copies) > 1:
            notes.append(
                f"{grade_id}: {len(copies)} cells share its grade_id or marker; graded the "
                f"values after cell {last + 1}, where the notebook reaches its checks"
            )
    other = seen_ids - set(wanted) - checks_ids
    return Located(answers, graded_at, skip, other, notes)


def answer_text(cell: dict) -> str:
    """A hand-marked answer without its marker line; "" when it is still the release stub."""
    lines = cell.get("source", "").split("\n")
    if marker(cell):
        first = next(i for i, line in enumerate(lines) if line.strip())
        lines = lines[first + 1 :]
    text = "\n".join(lines).strip()
    return "" if text in (ANSWER_STUB, "\n".join(CODE_STUB)) else text
