"""Submissions made from a lab's solutions: the model answers put back in the released notebook
(full marks), crafted changes to one answer, and one call grading them in the smoke profile."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from labkit.grading.authoring.protocol import BEGIN_SOLUTION, END_SOLUTION, marker, nbgrader_meta
from labkit.grading.authoring.release import release_text
from labkit.grading.reports.gradebook import GradingRun
from labkit.grading.scheduler.run import grade_folder


def answered_notebook(solutions: Path | str) -> nbformat.NotebookNode:
    """The released student notebook with the solutions' answers put back in.

    This is a submission that must get full marks: grading it checks a solutions notebook, and
    it is the starting point of crafted submissions in the tests and the benchmark.
    """
    solved = nbformat.read(solutions, as_version=4)
    released = nbformat.reads(release_text(Path(solutions)), as_version=4)
    for source, cell in zip(solved.cells, released.cells, strict=True):
        if nbgrader_meta(source).get("solution"):
            lines = source.source.split("\n")
            cell.source = "\n".join(
                line for line in lines if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
            )
    return released


def with_lines(nb: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    """A copy of `nb` whose answer `grade_id` ends with `code` (which then wins)."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if marker(c) == ("answer", grade_id))
    cell.source = f"{cell.source}\n{code}"
    return nb


def grade_in_smoke(
    solutions: Path, submissions: dict[str, nbformat.NotebookNode], root: Path, total_timeout: int
) -> GradingRun:
    """Write `submissions` (student name -> notebook) under `root` and grade them against
    `solutions` in the smoke profile, two at a time."""
    (root / "submissions").mkdir()
    for name, nb in submissions.items():
        nbformat.write(nb, root / "submissions" / f"{name}.ipynb")
    return grade_folder(
        solutions,
        root / "submissions",
        root / "out",
        workers=2,
        cell_timeout=90.0,
        total_timeout=total_timeout,
        memory_limit=4.0,
        profile="smoke",
    )
