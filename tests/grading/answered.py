"""The solutions' own answers put back in the released notebook: a submission with full marks."""

from __future__ import annotations

from pathlib import Path

import nbformat

from labkit.grading.protocol import BEGIN_SOLUTION, END_SOLUTION, nbgrader_meta
from labkit.grading.release import release_text


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
