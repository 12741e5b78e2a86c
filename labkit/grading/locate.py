"""Finding each question's cells again in a submission.

A student's notebook is edited: cells move, editors drop or duplicate metadata (VS Code, Colab).
`locate` finds each question's answer cell by its nbgrader grade_id, else by its marker line
(see `labkit.grading.protocol`), and lists the checks cells the grader must never run;
`answer_text` reads a hand-marked answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from labkit.grading.protocol import (
    ANSWER_STUB,
    BEGIN_HIDDEN,
    CODE_STUB,
    LabSpec,
    marker,
    nbgrader_meta,
)


@dataclass
class Located:
    """Where a submission keeps each question, and which of its cells must never run."""

    answers: dict[str, int | None]  # question grade_id -> cell index (None: not found)
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

    Duplicated grade_ids (a copied cell) prefer the cell whose marker also matches, else the
    first. Checks cells, found by metadata, marker, or a hidden-tests region, are listed in
    `skip`: they are the student's copy, and the grader runs the solutions' checks instead.
    """
    cells = nb.get("cells", [])
    checks_ids = {c.grade_id for q in spec.questions for c in q.checks}
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
        if cell.get("cell_type") == "code" and (
            grade_id in checks_ids
            or (meta.get("grade") and not meta.get("solution"))
            or (mark and mark[0] == "checks")
            or BEGIN_HIDDEN in cell.get("source", "")
        ):
            skip.add(index)
            continue
        if grade_id in wanted and cell.get("cell_type") == wanted[grade_id]:
            by_meta.setdefault(grade_id, []).append(index)
        if mark and mark[0] == "answer" and mark[1] in wanted:
            by_marker.setdefault(mark[1], []).append(index)
    answers, notes = {}, []
    for grade_id in wanted:
        meta_cells, marker_cells = by_meta.get(grade_id, []), by_marker.get(grade_id, [])
        chosen = _choose(meta_cells, marker_cells) if meta_cells else _choose(marker_cells, ())
        if len(meta_cells) > 1:
            notes.append(
                f"{grade_id}: {len(meta_cells)} cells share its grade_id; graded cell {chosen + 1}"
            )
        answers[grade_id] = chosen
    other = seen_ids - set(wanted) - checks_ids
    return Located(answers=answers, skip=skip, other_ids=other, notes=notes)


def answer_text(cell: dict) -> str:
    """A hand-marked answer without its marker line; "" when it is still the release stub."""
    lines = cell.get("source", "").split("\n")
    if marker(cell):
        first = next(i for i, line in enumerate(lines) if line.strip())
        lines = lines[first + 1 :]
    text = "\n".join(lines).strip()
    return "" if text in (ANSWER_STUB, "\n".join(CODE_STUB)) else text
