"""The question protocol: the nbgrader markers, and the questions of a solutions notebook.

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
``grade: true`` and no checks) is marked by hand. The markers, region parser and grade_id check
here serve release too; `labkit.grading.authoring.locate` finds the questions again in a submission.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

# The nbgrader markers, each alone on its line (indentation allowed).
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
# What release puts in place of a solution: in code (indented like the marker), in markdown.
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
ANSWER_STUB = "YOUR ANSWER HERE"

_ID = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
ANSWER_CODE = re.compile(rf"^#\s*Answer\s+({_ID})\s*$")
ANSWER_TEXT = re.compile(rf"^<!--\s*Answer\s+({_ID})\s*-->\s*$")
CHECKS = re.compile(rf"^#\s*Checks\s+({_ID})\s*:\s*(.*?)\s*$")
# In a checks cell's hidden tests: the callables an answer must not call, the labkit names it may
FORBIDDEN_LINE = re.compile(r"^#\s*Forbidden calls\s*:\s*(.*?)\s*$")
ALLOWED_LINE = re.compile(r"^#\s*Allowed calls\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class Check:
    """One checks cell: all-or-nothing `points`; its code runs in the grader, never in a kernel."""

    grade_id: str
    points: float
    code: str  # the whole cell; hidden lines are told apart by `hidden_lines`
    hidden_lines: tuple[int, ...]  # 1-based line numbers inside a hidden-tests region
    # callables an answer must not call, and labkit names it may (`parse_call_lists`; judged by
    # `labkit.grading.worker.provenance`)
    forbidden: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

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
    # the solutions' code cells between the answer and its first checks cell: the grader runs
    # its own copy before exporting, so a student's edited probe changes nothing
    probe: tuple[str, ...] = ()

    @property
    def manual(self) -> bool:
        """Marked by hand (free text, or code without checks)."""
        return not self.checks

    @property
    def forbidden(self) -> tuple[str, ...]:
        """Every callable an answer to this question must not call (all its checks cells')."""
        return tuple(dict.fromkeys(n for c in self.checks for n in c.forbidden))

    @property
    def allowed(self) -> tuple[str, ...]:
        """The labkit names an answer to this question may call."""
        return tuple(dict.fromkeys(n for c in self.checks for n in c.allowed))


@dataclass(frozen=True)
class LabSpec:
    """Every question of one lab, parsed from its solutions notebook."""

    lab: str | None
    questions: tuple[Question, ...]
    source: str = ""  # where it was read from, for messages
    # the sources of the solutions' code cells that are not answers or checks: a submission's
    # cell with one of these sources is the lab's, any other cell the student's own code
    lab_cells: tuple[str, ...] = ()

    @property
    def max_points(self) -> dict[str, float]:
        """Points per question, in notebook order."""
        return {q.grade_id: q.points for q in self.questions}

    @property
    def auto(self) -> tuple[Question, ...]:
        """The questions graded by their checks."""
        return tuple(q for q in self.questions if not q.manual)

    @property
    def manual(self) -> tuple[Question, ...]:
        """The questions marked by hand."""
        return tuple(q for q in self.questions if q.manual)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready): handed to a grading worker, so it never reads the file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabSpec:
        """The spec `to_dict` gave."""
        questions = tuple(
            Question(
                **{
                    **q,
                    "checks": tuple(
                        Check(
                            **{
                                **c,
                                "hidden_lines": tuple(c["hidden_lines"]),
                                "forbidden": tuple(c.get("forbidden", ())),
                                "allowed": tuple(c.get("allowed", ())),
                            }
                        )
                        for c in q["checks"]
                    ),
                    "names": tuple(q["names"]),
                    "probe": tuple(q.get("probe", ())),
                }
            )
            for q in data["questions"]
        )
        return cls(
            lab=data["lab"],
            questions=questions,
            source=data.get("source", ""),
            lab_cells=tuple(data.get("lab_cells", ())),
        )


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


def regions(lines: Sequence[str], begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """The `begin`...`end` regions of `lines`: 1-based `(begin line, end line)`, markers included.

    A marker is a line equal to it once stripped (indented markers count). Regions do not nest: a
    ValueError naming `where` and the line refuses a nested begin, a lone end, an unclosed begin.
    """
    found: list[tuple[int, int]] = []
    opened: int | None = None  # the line of the open region's begin marker
    for number, line in enumerate(lines, start=1):
        mark = line.strip()
        if mark == begin:
            if opened is not None:
                raise ValueError(
                    f"{where}, line {number}: {begin!r} inside another region (opened at line "
                    f"{opened}); close that one with {end!r} first"
                )
            opened = number
        elif mark == end:
            if opened is None:
                raise ValueError(f"{where}, line {number}: {end!r} without {begin!r}; remove it")
            found.append((opened, number))
            opened = None
    if opened is not None:
        raise ValueError(
            f"{where}, line {opened}: {begin!r} is never closed by {end!r}; add the end marker"
        )
    return found


def hidden_line_numbers(source: str, where: str) -> tuple[int, ...]:
    """1-based numbers of the lines inside hidden-tests regions, markers included."""
    spans = regions(source.split("\n"), BEGIN_HIDDEN, END_HIDDEN, where)
    return tuple(n for first, last in spans for n in range(first, last + 1))


def check_grade_ids(nb: nbformat.NotebookNode, where: str) -> dict[str, int]:
    """Each graded or answer cell's grade_id -> its cell index (release and parse_solutions).

    A ValueError names a cell without a grade_id, or two cells sharing one.
    """
    seen: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if not (meta.get("solution") or meta.get("grade")):
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            raise ValueError(f"{where}, cell {index}: nbgrader cell without a grade_id; add one")
        if grade_id in seen:
            raise ValueError(
                f"{where}, cells {seen[grade_id]} and {index} share grade_id {grade_id!r}; "
                "give each question cell its own id"
            )
        seen[grade_id] = index
    return seen


def parse_call_lists(
    source: str, hidden_lines: Iterable[int], where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(forbidden, allowed)` names from a checks cell's comment lines.

    A ValueError names a list line that stands outside a hidden-tests region (it would be
    released to students) or a name that is not dotted Python.
    """
    hidden = set(hidden_lines)
    forbidden: list[str] = []
    allowed: list[str] = []
    for number, line in enumerate(source.split("\n"), start=1):
        for pattern, into in ((FORBIDDEN_LINE, forbidden), (ALLOWED_LINE, allowed)):
            match = pattern.match(line.strip())
            if not match:
                continue
            if number not in hidden:
                raise ValueError(
                    f"{where}, line {number}: the list of forbidden or allowed calls must stand "
                    "inside the hidden tests, or the released notebook points at the answer"
                )
            names = [n.strip() for n in match.group(1).split(",") if n.strip()]
            bad = [n for n in names if not all(p.isidentifier() for p in n.split("."))]
            if bad or not names:
                raise ValueError(f"{where}, line {number}: not dotted Python names: {bad or line}")
            into += [n for n in names if n not in into]
    return tuple(forbidden), tuple(allowed)


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
    forbidden, allowed = parse_call_lists(cell.source, hidden, where)
    check = Check(str(meta["grade_id"]), float(points), cell.source, hidden, forbidden, allowed)
    return answer_id, check, names


def parse_solutions(solutions: Path | str | nbformat.NotebookNode) -> LabSpec:
    """The questions of a solutions notebook; a ValueError names a cell that breaks the protocol."""
    if isinstance(solutions, nbformat.NotebookNode):
        nb, source = solutions, "solutions notebook"
    else:
        nb, source = nbformat.read(solutions, as_version=4), str(solutions)
    check_grade_ids(nb, source)
    answers: dict[str, tuple[str, float, int]] = {}  # grade_id -> (kind, manual points, cell)
    checks: dict[str, list[Check]] = {}
    names: dict[str, list[str]] = {}
    probes: dict[str, list[str]] = {}  # grade_id -> code cells after the answer, before checks
    lab_cells: list[str] = []
    open_answer: str | None = None  # the code answer whose probe cells are being read
    for index, cell in enumerate(nb.cells):
        meta, where = nbgrader_meta(cell), f"{source}, cell {index}"
        if not meta or not (meta.get("solution") or meta.get("grade")):
            if cell.cell_type == "code" and cell.source.strip():
                lab_cells.append(cell.source)
                if open_answer is not None:
                    probes.setdefault(open_answer, []).append(cell.source)
            continue
        open_answer = (
            meta["grade_id"] if meta.get("solution") and cell.cell_type == "code" else None
        )
        grade_id = meta["grade_id"]  # there, and unique: check_grade_ids
        if meta.get("solution"):
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
        probe = tuple(probes.get(grade_id, ())) if found else ()
        questions.append(
            Question(grade_id, kind, points, found, tuple(names.get(grade_id, ())), probe)
        )
    if not questions:
        raise ValueError(f"{source}: no graded questions (see docs/GRADING.md for the protocol)")
    lab = nb.metadata.get("labkit", {}).get("lab") if isinstance(nb.metadata, dict) else None
    return LabSpec(
        lab=lab,
        questions=tuple(questions),
        source=source,
        lab_cells=tuple(dict.fromkeys(lab_cells)),
    )
