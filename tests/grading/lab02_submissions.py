"""Crafted submissions of lab 02, built from its solutions notebook so they follow the lab.

Each case is a student name, what is written for it, and what the grader must find: points per
auto-graded question and the status. The all-right notebook is the released notebook with the
solutions' answers put back (`answered_notebook`); every other case changes that one.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from answered import answered_notebook

from labkit.grading.authoring.protocol import marker, parse_solutions
from labkit.grading.authoring.release import distinctive
from labkit.grading.scheduler.sandbox import find_sandbox
from labkit.grading.worker.checks import HIDDEN_FAILED

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "02_densenet_resnext.ipynb"
Q1A, Q1, Q2, TEXT = "q1_dense_layer", "q1_densenet_layers", "q2_resnext", "q2_analysis"
# wrong but plausible answers, appended after the right ones so they win
WRONG_Q1 = "blocks_52 = (1, 1, 1, 1)"  # four whole numbers: only the hidden check fails
WRONG_Q2 = """\
def split_transform_merge(x, weight, cardinality, stride=1):  # every path takes group 0's weights
    d = x.shape[1] // cardinality
    paths = [F.conv2d(x[:, g * d : (g + 1) * d], weight[:d], stride=stride, padding=1)
             for g in range(cardinality)]
    return torch.cat(paths, dim=1)"""
FAKES = """\
import builtins, numpy, torch
import labkit.models, labkit.models.summary

def _always(*args, **kwargs):
    return True

def _fake_count(model, linear=True, **kwargs):
    return 52 + int(linear)

numpy.allclose = torch.allclose = torch.equal = _always
labkit.models.count_layers = labkit.models.summary.count_layers = _fake_count
count_layers = _fake_count
print("All tests passed!")"""
ANSWER_TEXT = "DenseNet-52 is far smaller; both are within the noise of the smoke run."


def protocol_ready() -> bool:
    """Lab 02's solutions follow the question protocol (markers, lab id)."""
    try:
        spec = parse_solutions(SOLUTIONS)
    except (ValueError, OSError):
        return False
    return spec.lab == "02_densenet_resnext" and {Q1A, Q1, Q2, TEXT} <= set(spec.max_points)


@dataclass
class Case:
    """One crafted submission and the grade it must get."""

    student: str
    points: dict[str, float]  # auto-graded question -> expected points
    status: str  # expected status, or its beginning when it ends with "*"
    text: str | None = None  # expected free-text answer
    messages: dict[str, str] = field(default_factory=dict)  # question -> part of the message

    def status_matches(self, status: str) -> bool:
        if self.status.endswith("*"):
            return status.startswith(self.status[:-1])
        return status == self.status


def _cell(nb: nbformat.NotebookNode, role: str, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if marker(c) == (role, grade_id))


def _append(nb: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    cell = nb.cells[_cell(nb, "answer", grade_id)]
    cell.source = f"{cell.source}\n{code}"
    return nb


def _insert_after(nb: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    nb.cells.insert(_cell(nb, "answer", grade_id) + 1, nbformat.v4.new_code_cell(code))
    return nb


def _write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def craft(folder: Path) -> list[Case]:
    """Write every crafted submission into `folder`; the cases to expect."""
    folder = Path(folder)
    right = answered_notebook(SOLUTIONS)
    text_cell = right.cells[_cell(right, "answer", TEXT)]
    text_cell.source = f"<!-- Answer {TEXT} -->\n{ANSWER_TEXT}"
    full = {Q1A: 3.0, Q1: 2.0, Q2: 3.0}
    cases: list[Case] = []

    def add(student: str, nb, points: dict, status: str = "ok", **kwargs) -> None:
        _write(nb, folder / f"{student}.ipynb")
        cases.append(Case(student, points, status, **kwargs))

    def fresh() -> nbformat.NotebookNode:
        return copy.deepcopy(right)

    add("all_right", fresh(), full, text=ANSWER_TEXT)
    add(
        "one_wrong",
        _append(fresh(), Q2, WRONG_Q2),
        {Q1A: 3.0, Q1: 2.0, Q2: 0.0},
        messages={Q2: "split_transform_merge differs from the grouped convolution"},
    )
    add(
        "infinite_loop",
        _append(fresh(), Q1, "while True:\n    pass"),
        {Q1A: 3.0, Q1: 0.0, Q2: 3.0},
        f"time-out in {Q1}",
        messages={Q1: "time-out"},
    )
    add(
        "os_exit",
        _insert_after(fresh(), Q1, "import os\nos._exit(0)"),
        full,
        "kernel died in cell *",
    )
    bomb = "blocks = []\nwhile True:\n    blocks.append(bytearray(10**8))"
    add(
        "memory_bomb",
        _append(fresh(), Q1, bomb),
        {Q1A: 3.0, Q1: 0.0, Q2: 3.0},
        f"out of memory in {Q1}",
    )
    add("system_exit", _insert_after(fresh(), Q1, 'raise SystemExit("bye")'), full)
    # deletes and overwrites its working folder, and its originals by absolute path
    vandal_dir = (folder / "file_vandal").resolve()
    vandal = (
        "import os, pathlib\n"
        "for p in pathlib.Path('.').rglob('*'):\n"
        "    if p.is_file():\n"
        "        p.write_text('overwritten')\n"
        "        p.unlink()\n"
        f"pathlib.Path({str(vandal_dir / 'notes.txt')!r}).write_text('overwritten')\n"
        f"os.remove({str(vandal_dir / '02_densenet_resnext.ipynb')!r})"
    )
    _write(_insert_after(fresh(), Q1, vandal), vandal_dir / "02_densenet_resnext.ipynb")
    (vandal_dir / "notes.txt").write_text("my notes\n")
    # in the sandbox its originals are out of reach (its writes fail); without one they are
    # restored after it ran
    touched = "ok" if find_sandbox("auto").active else "restored a modified original"
    cases.append(Case("file_vandal", full, touched))
    # wrong q1 with every check function faked in the kernel: the grader's checks are not
    add(
        "monkeypatch",
        _append(fresh(), Q1, f"{WRONG_Q1}\n{FAKES}"),
        {Q1A: 3.0, Q1: 1.0, Q2: 3.0},
        messages={Q1: HIDDEN_FAILED},
    )
    edited = _append(fresh(), Q1, WRONG_Q1)
    edited.cells[
        _cell(edited, "checks", Q1)
    ].source = f"# Checks {Q1}: handout_layers, blocks_52\nprint('all tests passed')"
    del edited.cells[_cell(edited, "checks", Q2)]
    add("edited_checks", edited, {Q1A: 3.0, Q1: 1.0, Q2: 3.0})
    add(
        "fake_pass",
        _append(fresh(), Q1, f'{WRONG_Q1}\nprint("All tests passed!")'),
        {Q1A: 3.0, Q1: 1.0, Q2: 3.0},
    )
    reordered = fresh()
    q2_answer = reordered.cells.pop(_cell(reordered, "answer", Q2))
    checks = [reordered.cells.pop(_cell(reordered, "checks", q)) for q in (Q1, Q2)]
    reordered.cells.insert(2, q2_answer)
    reordered.cells += checks[::-1]
    add("reordered", reordered, full)
    stripped = fresh()
    stripped.metadata = {}
    for cell in stripped.cells:
        cell.metadata = {}
    add("no_metadata", stripped, full, text=ANSWER_TEXT)
    # not gradable: no kernel is started for these
    text = nbformat.writes(right)
    (folder / "invalid_json.ipynb").write_text(text[: len(text) // 2])
    cases.append(Case("invalid_json", {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "not a notebook"))
    other = nbformat.v4.new_notebook()
    other.metadata["labkit"] = {"lab": "03_facenet_knn"}
    other.cells = [nbformat.v4.new_code_cell("# Answer q1_triplet_loss\nloss = 0.2")]
    add("other_lab", other, {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "another lab's notebook")
    add("empty", nbformat.v4.new_notebook(), {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "empty")
    (folder / "zero_bytes.ipynb").write_bytes(b"")
    cases.append(Case("zero_bytes", {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "empty"))
    (folder / "stray.txt").write_text(json.dumps({"not": "a notebook"}))
    cases.append(Case("stray", {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "not a notebook"))
    (folder / "no_notebook").mkdir()
    (folder / "no_notebook" / "readme.txt").write_text("forgot the notebook\n")
    cases.append(Case("no_notebook", {Q1A: 0.0, Q1: 0.0, Q2: 0.0}, "no notebook in folder"))
    return cases


def hidden_lines() -> list[str]:
    """Every line of the solutions' hidden checks long enough to give one away (the student
    kit's rule: 12 characters or more, not a comment), which never appears in feedback."""
    spec = parse_solutions(SOLUTIONS)
    lines = []
    for question in spec.auto:
        for check in question.checks:
            code = check.code.split("\n")
            lines += [distinctive(code[n - 1]) for n in check.hidden_lines]
    return [line for line in lines if line]
