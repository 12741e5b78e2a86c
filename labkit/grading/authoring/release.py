"""Release student notebooks from the instructors' solutions notebooks.

The markers follow nbgrader, so a course that uses nbgrader can take the notebooks as they are:

- code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` plus
  ``raise NotImplementedError()``, at the indentation of the marker;
- a markdown answer cell (``metadata.nbgrader.solution`` true) keeps what stands before
  ``### BEGIN SOLUTION`` and gets ``YOUR ANSWER HERE`` instead of the answer;
- code between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed;
- outputs, execution counts and execution timestamps are cleared, and so is the saved widget
  state;
- an answer cell keeps nothing but its stub source and its nbgrader metadata (no attachment,
  no other metadata), and a code answer cell without a solution region is refused: releasing
  it would hand out its answer.

`check_release` also fails when a line of a solution region appears anywhere in a released
notebook (an answer repeated in a demo cell or in prose).

The markers, the region parser and the grade_id check live in `labkit.grading.authoring.protocol`.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from labkit.grading.authoring.protocol import (
    ANSWER_STUB,
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CODE_STUB,
    END_HIDDEN,
    END_SOLUTION,
    check_grade_ids,
    nbgrader_meta,
    regions,
)


def _replace_regions(
    lines: list[str], begin: str, end: str, stub: list[str], where: str
) -> list[str]:
    """Replace every begin/end region in `lines` with `stub`, indented like the begin marker."""
    out: list[str] = []
    done = 0  # lines[:done] are handled
    for first, last in regions(lines, begin, end, where):
        begin_line = lines[first - 1]
        indent = begin_line[: len(begin_line) - len(begin_line.lstrip())]
        out += lines[done : first - 1]
        out += [indent + s for s in stub]
        done = last
    return out + lines[done:]


def release_cell(cell: nbformat.NotebookNode, where: str) -> nbformat.NotebookNode:
    """The student version of one cell (a modified copy; the input is left as it is).

    Raises ValueError for a code answer cell without a solution region (naming its grade_id).
    """
    cell = nbformat.from_dict(dict(cell))
    lines = cell.source.split("\n")
    meta = nbgrader_meta(cell)
    is_answer = bool(meta.get("solution", False))
    cell.metadata.pop("execution", None)  # when the solutions ran: not the student's business
    if is_answer:
        cell.pop("attachments", None)
        cell.metadata = nbformat.from_dict({"nbgrader": meta})
        if cell.cell_type == "code" and not regions(lines, BEGIN_SOLUTION, END_SOLUTION, where):
            raise ValueError(
                f"{where}: answer cell {meta.get('grade_id')!r} has no {BEGIN_SOLUTION!r} ... "
                f"{END_SOLUTION!r} region, so its answer would be released; mark the answer"
            )
    if cell.cell_type == "code":
        lines = _replace_regions(lines, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB, where)
        lines = _replace_regions(lines, BEGIN_HIDDEN, END_HIDDEN, [], where)
        cell.outputs = []
        cell.execution_count = None
    elif cell.cell_type == "markdown" and is_answer:
        if BEGIN_SOLUTION in cell.source:
            lines = _replace_regions(lines, BEGIN_SOLUTION, END_SOLUTION, [ANSWER_STUB], where)
        else:
            lines = [ANSWER_STUB]
    cell.source = "\n".join(lines)
    return cell


def release_text(solution: Path) -> str:
    """The student notebook released from `solution`, as the text it is written with."""
    nb = nbformat.read(solution, as_version=4)
    check_grade_ids(nb, str(solution))
    nb.cells = [release_cell(c, f"{solution}, cell {i}") for i, c in enumerate(nb.cells)]
    nb.metadata.pop("widgets", None)  # saved widget state belongs to the cleared outputs
    return nbformat.writes(nb) + "\n"


def release_notebook(solution: Path, student: Path) -> Path:
    """Write the student version of `solution` to `student`; returns `student`."""
    student = Path(student)
    student.parent.mkdir(parents=True, exist_ok=True)
    student.write_text(release_text(Path(solution)), encoding="utf-8")
    return student


def lab_notebooks(solutions_dir: Path) -> list[Path]:
    """The lab notebooks (`NN_name.ipynb`) in a solutions folder, in lab order."""
    pattern = re.compile(r"^\d\d_.*\.ipynb$")
    if not Path(solutions_dir).is_dir():
        return []
    return sorted(p for p in Path(solutions_dir).iterdir() if pattern.match(p.name))


def release_all(solutions_dir: Path, notebooks_dir: Path) -> list[Path]:
    """Release every lab notebook in `solutions_dir` into `notebooks_dir`."""
    return [release_notebook(p, Path(notebooks_dir) / p.name) for p in lab_notebooks(solutions_dir)]


MIN_LEAK_CHARS = 12  # shorter solution lines (`)`, `return x`) may stand anywhere


def distinctive(line: str) -> str:
    """`line` stripped when it is long enough to give an answer away, else "" (comments never
    do). The student kit's check (`labkit.grading.authoring.kit`) uses the same rule."""
    text = line.strip()
    return text if len(text) >= MIN_LEAK_CHARS and not text.startswith("#") else ""


def region_lines(cell: dict, begin: str, end: str, where: str) -> list[str]:
    """The distinctive lines of `cell` inside its `begin`...`end` regions (markers excluded)."""
    lines = cell["source"].split("\n")
    inside = [
        line
        for first, last in regions(lines, begin, end, where)
        for line in lines[first : last - 1]
    ]
    return [text for text in map(distinctive, inside) if text]


def solution_lines(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Each distinctive line inside a solution region -> the grade_id of its answer cell."""
    found = {}
    for index, cell in enumerate(nb.cells):
        for text in region_lines(cell, BEGIN_SOLUTION, END_SOLUTION, f"cell {index}"):
            found.setdefault(text, str(nbgrader_meta(cell).get("grade_id", index)))
    return found


def leaked_lines(solution: Path, student_text: str) -> list[str]:
    """Where a line of a solution region of `solution` stands in a student notebook's text."""
    student = nbformat.reads(student_text, as_version=4)
    answers = solution_lines(nbformat.read(solution, as_version=4))
    problems = []
    for index, cell in enumerate(student.cells):
        for text in {line.strip() for line in cell.source.split("\n")} & set(answers):
            problems.append(
                f"cell {index} holds a line of the answer to {answers[text]}: {text[:60]!r}"
            )
    return problems


def check_release(solutions_dir: Path, notebooks_dir: Path) -> list[str]:
    """Problems that make `notebooks_dir` differ from the release of `solutions_dir`, or that
    leak an answer (empty: ok)."""
    problems = []
    expected = {p.name: p for p in lab_notebooks(solutions_dir)}
    for name, solution in expected.items():
        student = Path(notebooks_dir) / name
        if not student.is_file():
            problems.append(f"{student} is missing; run `labkit release`")
            continue
        released = release_text(solution)
        if student.read_text(encoding="utf-8") != released:
            problems.append(
                f"{student} differs from the release of {solution}; run `labkit release`"
            )
        problems += [f"{student}: {leak}" for leak in leaked_lines(solution, released)]
    released = lab_notebooks(notebooks_dir)
    problems += [
        f"{p} has no solutions notebook; remove it" for p in released if p.name not in expected
    ]
    return problems
