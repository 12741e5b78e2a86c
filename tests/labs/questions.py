"""Running a lab's question cells in-process, grading them as the grader does, and the tests every
lab's graded questions share.

The per-question tests execute the solutions notebook's own answer cell, an alternative or wrong
variant, and the probe cells after the answer (which run the student's code on fixed inputs),
then grade the resulting values with the grader's `run_checks` and its verdict on the calls the
student's code made (`labkit.grading.worker.provenance`): `run_cells` records them as the grader's
kernel does, every cell that is not one of a lab's own cells counting as the student's.

A lab's question-test module reads its notebook once (`Lab(path, namespace)`) and subclasses
`QuestionSuite` once, as `TestQuestions`, setting the lab's cases; `QuestionSuite`'s tests then
run on them, each case an item, and the module's own functions hold what is particular to the lab.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import nbformat
import pytest

from labkit.grading.authoring.protocol import Question, marker, parse_solutions
from labkit.grading.authoring.release import release_cell
from labkit.grading.kernel.recorder import Recorder
from labkit.grading.worker.checks import HIDDEN_FAILED, run_checks
from labkit.grading.worker.provenance import bound_names, judge_calls, read_names

RECORD = "__labkit_calls__"  # where `run_cells` keeps the recorded calls in a namespace
STUDENT_FILE = "<student cell>"
LAB_FILE = "<lab cell>"
MISSING = "not defined where the notebook reaches the checks"  # an unanswered question's message


class Lab:
    """One solutions notebook: its cells by question, and its questions' checks.

    `namespace()` gives a fresh dict of what the lab's cells before a question define (imports,
    data at a small size); the cells of a test run in it.
    """

    def __init__(self, path: Path, namespace: Callable[[], dict]) -> None:
        self.nb = nbformat.read(path, as_version=4)
        spec = parse_solutions(path)
        self.questions: dict[str, Question] = {q.grade_id: q for q in spec.auto}
        self.namespace = namespace
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

    def probes(self, grade_id: str) -> tuple[str, ...]:
        """The code cells between the answer and its checks: they run the student's code, and
        the grader runs its own copy of them."""
        return self.questions[grade_id].probe

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

    def run(self, *cells: str) -> dict:
        """A fresh namespace after `cells` ran in it (`run_cells`)."""
        return run_cells(self.namespace(), *cells)

    def answered(self, grade_id: str, *cells: str) -> dict:
        """A fresh namespace after `cells` (answer cells and cells of the student's own), then
        the question's probe cells, ran in it."""
        return self.run(*cells, *self.probes(grade_id))

    def mark(self, grade_id: str, *cells: str) -> tuple[float, str]:
        """Points and message for `cells`, then the question's probe cells."""
        return self.grade(grade_id, self.answered(grade_id, *cells))


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


def is_module(name: str) -> bool:
    """Whether the dotted `name` is an importable module (else a class, a function, or absent)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _cases(attribute: str, argnames: str) -> Callable:
    """Mark a `QuestionSuite` test to be parametrised by `argnames` over the lab's `attribute`."""

    def mark(test: Callable) -> Callable:
        test.cases = (attribute, argnames)
        return test

    return mark


class QuestionSuite:
    """The tests every lab's graded questions share, run on the cases a subclass sets.

    For every question: (a) its model answer gets full marks; its released answer cell asks for
    the answer and, unanswered, names what is missing; its visible checks show no forbidden
    callable and no reference to paste, and hide the rest; (b) correct answers in other forms get
    full marks; (c) shortcuts get no marks and the feedback names what they called; (d) plausible
    wrong answers get no marks and a message a student can act on, and answers that pass the
    visible checks (tuned to their inputs, or their literal values pasted) fail a hidden one.
    """

    lab: ClassVar[Lab]
    points: ClassVar[dict[str, float]]  # every code question of the lab, and its full marks
    forbids_nothing: ClassVar[tuple[str, ...]] = ()  # questions listing no forbidden call
    references: ClassVar[tuple[str, ...]] = ()  # text no visible check may show
    # (question, cells: the student's own cells, the answer last)
    other_forms: ClassVar[Sequence[tuple[str, Sequence[str]]]] = ()
    # (question, cells, what the feedback names); the feedback holds `shortcut_says` too
    shortcuts: ClassVar[Sequence[tuple[str, Sequence[str], str]]] = ()
    shortcut_says: ClassVar[str] = ""
    # (question, a cell run after the model answer, words of the feedback)
    wrong: ClassVar[Sequence[tuple[str, str, str]]] = ()
    # (question, cells) that pass every visible check and fail a hidden one
    visible_only: ClassVar[Sequence[tuple[str, Sequence[str]]]] = ()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        attribute, argnames = getattr(metafunc.function, "cases", (None, None))
        if attribute == "points":
            metafunc.parametrize(argnames, list(self.points))
        elif attribute is not None:
            rows = list(getattr(self, attribute))
            metafunc.parametrize(argnames, rows, ids=_ids(rows))

    def test_every_code_question_is_tested_here(self) -> None:
        assert set(self.lab.questions) == set(self.points)
        assert [self.lab.full(q) for q in self.points] == list(self.points.values())

    @_cases("points", "grade_id")
    def test_visible_checks_show_no_forbidden_call_or_reference(self, grade_id: str) -> None:
        """Every check hides some lines; the question's forbidden calls stand in its hidden tests,
        and what students see compares with literal values: it names neither a forbidden
        callable (a class or function by its short name too) nor a reference of the lab's."""
        question = self.lab.questions[grade_id]
        assert bool(question.forbidden) != (grade_id in self.forbids_nothing), question.forbidden
        for check in question.checks:
            visible = check.visible_code
            assert check.hidden_lines and "Forbidden calls" not in visible, check.grade_id
            for name in question.forbidden:
                assert name not in visible, (check.grade_id, name)
                if "." in name and not is_module(name):  # a class or a function: its short name
                    assert not re.search(rf"\b{re.escape(name.rsplit('.', 1)[1])}\b", visible), name
            for reference in self.references:
                assert reference not in visible, (check.grade_id, reference)

    @_cases("points", "grade_id")
    def test_model_answers_get_full_marks(self, grade_id: str) -> None:
        assert self.lab.mark(grade_id, self.lab.answer(grade_id)) == (self.lab.full(grade_id), "")

    @_cases("points", "grade_id")
    def test_an_unanswered_question_asks_for_the_answer_and_names_what_is_missing(
        self, grade_id: str
    ) -> None:
        """As released, the answer cell and the probe cells after it stop at a stub's
        NotImplementedError before they define what the checks read."""
        released = self.lab.released(grade_id)
        assert "### BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
        ns = self.lab.namespace()
        with pytest.raises(NotImplementedError):
            run_cells(ns, released, *self.lab.probes(grade_id))
        points, got = self.lab.grade(grade_id, ns)
        assert points == 0.0 and got.endswith(MISSING), got

    @_cases("other_forms", "grade_id, cells")
    def test_answers_in_other_forms_get_full_marks(
        self, grade_id: str, cells: Sequence[str]
    ) -> None:
        assert self.lab.mark(grade_id, *cells) == (self.lab.full(grade_id), "")

    @_cases("shortcuts", "grade_id, cells, called")
    def test_shortcuts_get_no_marks_and_name_the_call(
        self, grade_id: str, cells: Sequence[str], called: str
    ) -> None:
        points, message = self.lab.mark(grade_id, *cells)
        assert points == 0.0 and called in message and self.shortcut_says in message, message

    @_cases("wrong", "grade_id, change, message")
    def test_plausible_wrong_answers_get_no_marks_and_say_why(
        self, grade_id: str, change: str, message: str
    ) -> None:
        points, got = self.lab.mark(grade_id, self.lab.answer(grade_id), change)
        assert points == 0.0 and message in got, got

    @_cases("visible_only", "grade_id, cells")
    def test_answers_that_pass_the_visible_checks_fail_a_hidden_one(
        self, grade_id: str, cells: Sequence[str]
    ) -> None:
        ns = self.lab.answered(grade_id, *cells)
        for check in self.lab.questions[grade_id].checks:  # they pass what students see
            exec(compile(check.visible_code, "<visible>", "exec"), {**ns})  # noqa: S102
        assert self.lab.grade(grade_id, ns) == (0.0, HIDDEN_FAILED)


def _ids(rows: Sequence[tuple]) -> list[str]:
    """`question-n` for the n-th case of each question (from 0)."""
    seen: Counter[str] = Counter()
    ids = []
    for grade_id, *_ in rows:
        ids.append(f"{grade_id}-{seen[grade_id]}")
        seen[grade_id] += 1
    return ids
