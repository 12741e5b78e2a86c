"""The question protocol: questions read from a solutions notebook, and found again in submissions.

A solutions notebook marks each question twice, so that a notebook whose metadata an editor
dropped or duplicated (VS Code, Colab; nbgrader #981, #1083) still grades:

- an answer cell: ``metadata.nbgrader`` with ``grade_id``, ``solution: true``, and as its
  first line ``# Answer <grade_id>`` (code) or ``<!-- Answer <grade_id> -->`` (markdown,
  marked by hand);
- a checks cell: ``metadata.nbgrader`` with ``grade: true``, ``locked: true``, ``points``, and
  as its first line ``# Checks <answer grade_id>: name, name`` (the names the checks read).
  Visible asserts, then hidden ones between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS``.

A code answer with checks is graded automatically; a markdown answer (or a code answer with
``grade: true`` and no checks) is marked by hand.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from labkit.grading.release import (
    ANSWER_STUB,
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CODE_STUB,
    END_HIDDEN,
    END_SOLUTION,
)

_ID = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
ANSWER_CODE = re.compile(rf"^#\s*Answer\s+({_ID})\s*$")
ANSWER_TEXT = re.compile(rf"^<!--\s*Answer\s+({_ID})\s*-->\s*$")
CHECKS = re.compile(rf"^#\s*Checks\s+({_ID})\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class Check:
    """One checks cell: all-or-nothing `points`; its code runs in the grader, never in a kernel."""

    grade_id: str
    points: float
    code: str  # the whole cell; hidden lines are told apart by `hidden_lines`
    hidden_lines: tuple[int, ...]  # 1-based line numbers inside a hidden-tests region

    @property
    def visible_code(self) -> str:
        """The code a student sees (hidden regions removed)."""
        hidden = set(self.hidden_lines)
        lines = self.code.split("\n")
        return "\n".join(line for n, line in enumerate(lines, 1) if n not in hidden)


@dataclass(frozen=True)
class Question:
    """One question: its answer cell's grade_id, kind, points and the checks that grade it."""

    grade_id: str
    kind: str  # "code" or "text"
    points: float
    checks: tuple[Check, ...] = ()
    names: tuple[str, ...] = ()  # values exported from the student's kernel for the checks

    @property
    def manual(self) -> bool:
        """Marked by hand (free text, or code without checks)."""
        return not self.checks


@dataclass(frozen=True)
class LabSpec:
    """Every question of one lab, parsed from its solutions notebook."""

    lab: str | None
    questions: tuple[Question, ...]
    source: str = ""  # where it was read from, for messages

    @property
    def max_points(self) -> dict[str, float]:
        """Points per question, in notebook order."""
        return {q.grade_id: q.points for q in self.questions}

    @property
    def auto(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if not q.manual)

    @property
    def manual(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.manual)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready): handed to a grading worker, so it never reads the file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabSpec:
        questions = tuple(
            Question(
                **{
                    **q,
                    "checks": tuple(
                        Check(**{**c, "hidden_lines": tuple(c["hidden_lines"])})
                        for c in q["checks"]
                    ),
                    "names": tuple(q["names"]),
                }
            )
            for q in data["questions"]
        )
        return cls(lab=data["lab"], questions=questions, source=data.get("source", ""))


def _first_line(source: str) -> str:
    """The first non-blank line of a cell, stripped."""
    return next((line.strip() for line in source.split("\n") if line.strip()), "")


def marker(cell: dict) -> tuple[str, str] | None:
    """`(role, grade_id)` from a cell's first line: role "answer" or "checks"; None without one."""
    line = _first_line(cell.get("source", ""))
    if cell.get("cell_type") == "markdown":
        match = ANSWER_TEXT.match(line)
        return ("answer", match.group(1)) if match else None
    for role, pattern in (("answer", ANSWER_CODE), ("checks", CHECKS)):
        match = pattern.match(line)
        if match:
            return role, match.group(1)
    return None


def nbgrader_meta(cell: dict) -> dict:
    """The cell's `metadata.nbgrader` dict ({} when absent or malformed)."""
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def hidden_line_numbers(source: str, where: str) -> tuple[int, ...]:
    """1-based numbers of the lines inside hidden-tests regions, markers included."""
    hidden, inside = [], False
    for number, line in enumerate(source.split("\n"), start=1):
        mark = line.strip()
        if mark == BEGIN_HIDDEN:
            if inside:
                raise ValueError(f"{where}, line {number}: {BEGIN_HIDDEN!r} inside another region")
            inside = True
        if inside:
            hidden.append(number)
        if mark == END_HIDDEN:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END_HIDDEN!r} without {BEGIN_HIDDEN!r}")
            inside = False
    if inside:
        raise ValueError(f"{where}: {BEGIN_HIDDEN!r} is never closed by {END_HIDDEN!r}")
    return tuple(hidden)


def _unbound_names(tree: ast.AST) -> set[str]:
    """Names a piece of code reads but never binds anywhere (an over-approximation of bound)."""
    loaded, bound = set(), set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return set()  # a star import binds names we cannot see
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return loaded - bound


def _check_from_cell(cell: dict, where: str) -> tuple[str, Check, tuple[str, ...]]:
    """`(answer grade_id, Check, names)` of a checks cell of the solutions notebook."""
    meta = nbgrader_meta(cell)
    match = CHECKS.match(_first_line(cell.source))
    if not match:
        raise ValueError(
            f"{where}: a checks cell (grade_id {meta.get('grade_id')!r}) must start with "
            "'# Checks <answer grade_id>: name, name' naming the answer and the values it reads"
        )
    answer_id, names_text = match.groups()
    names = tuple(n.strip() for n in names_text.split(",") if n.strip())
    bad = [n for n in names if not n.isidentifier()]
    if bad or not names:
        raise ValueError(f"{where}: the checks marker must list Python names, got {names_text!r}")
    points = meta.get("points")
    if not isinstance(points, (int, float)) or points <= 0:
        raise ValueError(f"{where}: checks cell {meta.get('grade_id')!r} needs points > 0")
    try:
        tree = ast.parse(cell.source, filename=where)
    except SyntaxError as error:
        raise ValueError(f"{where}: the checks do not parse: {error}") from error
    unknown = sorted(_unbound_names(tree) - set(names))
    if unknown:
        raise ValueError(
            f"{where}: the checks read {unknown}, which are neither in the marker line nor "
            "defined or imported in the cell; the checks run in the grader, where only the "
            "marker's names exist: import them in the cell or add them to the marker"
        )
    hidden = hidden_line_numbers(cell.source, where)
    return answer_id, Check(str(meta["grade_id"]), float(points), cell.source, hidden), names


def parse_solutions(solutions: Path | str | nbformat.NotebookNode) -> LabSpec:
    """The questions of a solutions notebook; a ValueError names a cell that breaks the protocol."""
    if isinstance(solutions, nbformat.NotebookNode):
        nb, source = solutions, "solutions notebook"
    else:
        nb, source = nbformat.read(solutions, as_version=4), str(solutions)
    answers: dict[str, tuple[str, float, int]] = {}  # grade_id -> (kind, manual points, cell)
    checks: dict[str, list[Check]] = {}
    names: dict[str, list[str]] = {}
    for index, cell in enumerate(nb.cells):
        meta, where = nbgrader_meta(cell), f"{source}, cell {index}"
        if not meta or not (meta.get("solution") or meta.get("grade")):
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            raise ValueError(f"{where}: nbgrader cell without a grade_id")
        if meta.get("solution"):
            if grade_id in answers:
                raise ValueError(f"{where}: grade_id {grade_id!r} is used twice")
            kind = "text" if cell.cell_type == "markdown" else "code"
            if marker(cell) != ("answer", grade_id):
                expected = (
                    f"<!-- Answer {grade_id} -->" if kind == "text" else f"# Answer {grade_id}"
                )
                raise ValueError(f"{where}: an answer cell must start with {expected!r}")
            manual_points = float(meta.get("points", 0) or 0) if meta.get("grade") else 0.0
            answers[grade_id] = (kind, manual_points, index)
        elif cell.cell_type == "code":
            answer_id, check, read = _check_from_cell(cell, where)
            checks.setdefault(answer_id, []).append(check)
            names.setdefault(answer_id, [])
            names[answer_id] += [n for n in read if n not in names[answer_id]]
    orphans = sorted(set(checks) - set(answers))
    if orphans:
        raise ValueError(f"{source}: checks for {orphans}, which no answer cell has as grade_id")
    questions = []
    for grade_id, (kind, manual_points, _) in sorted(answers.items(), key=lambda a: a[1][2]):
        found = tuple(checks.get(grade_id, ()))
        if found and kind == "text":
            raise ValueError(f"{source}: the text answer {grade_id!r} cannot have code checks")
        points = sum(c.points for c in found) if found else manual_points
        if points <= 0:
            continue  # an ungraded answer cell (nbgrader's solution-only cell): runs, no points
        questions.append(Question(grade_id, kind, points, found, tuple(names.get(grade_id, ()))))
    if not questions:
        raise ValueError(f"{source}: no graded questions (see docs/GRADING.md for the protocol)")
    lab = nb.metadata.get("labkit", {}).get("lab") if isinstance(nb.metadata, dict) else None
    return LabSpec(lab=lab, questions=tuple(questions), source=source)


@dataclass
class Located:
    """Where a submission keeps each question, and which of its cells must never run."""

    answers: dict[str, int | None]  # question grade_id -> cell index (None: not found)
    skip: set[int] = field(default_factory=set)  # checks cells (the student's copy is untrusted)
    other_ids: set[str] = field(default_factory=set)  # ids of markers/metadata not in this lab
    notes: list[str] = field(default_factory=list)

    @property
    def found_any(self) -> bool:
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


def answered_notebook(solutions: Path | str) -> nbformat.NotebookNode:
    """The released student notebook with the solutions' answers put back in.

    This is a submission that must get full marks: grading it checks a solutions notebook, and
    it is the starting point of crafted submissions in the tests and the benchmark.
    """
    from labkit.grading.release import release_text

    solved = nbformat.read(solutions, as_version=4)
    released = nbformat.reads(release_text(Path(solutions)), as_version=4)
    for source, cell in zip(solved.cells, released.cells, strict=True):
        if nbgrader_meta(source).get("solution"):
            lines = source.source.split("\n")
            cell.source = "\n".join(
                line for line in lines if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
            )
    return released
