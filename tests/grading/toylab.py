"""A tiny lab in the question protocol (two auto-graded questions, one free text): fast tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
from answered import answered_notebook

LAB = "99_toy"


def _meta(grade_id: str, *, solution: bool, grade: bool, points: float = 0) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution}
    if grade:
        meta["points"] = points
    return {"nbgrader": {**meta, "schema_version": 3}}


def answer(grade_id: str, body: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        f"# Answer {grade_id}\n### BEGIN SOLUTION\n{body}\n### END SOLUTION",
        metadata=_meta(grade_id, solution=True, grade=False),
    )


def checks(grade_id: str, names: str, visible: str, hidden: str, points: float) -> dict:
    source = (
        f"# Checks {grade_id}: {names}\n{visible}\n"
        f"### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"
    )
    return nbformat.v4.new_code_cell(
        source, metadata=_meta(f"{grade_id}_test", solution=False, grade=True, points=points)
    )


Q1_VISIBLE = 'assert isinstance(total, int), "total should be a whole number"'
Q1_HIDDEN = "assert total == 10\nassert squares == [0, 1, 4, 9, 16]  # SECRET_HIDDEN_LINE"
Q2_VISIBLE = (
    "import torch\n"
    "from labkit.models import DenseNet, count_layers\n"
    'assert isinstance(net, DenseNet), "build net with densenet_bc(...)"\n'
    'assert count_layers(net, linear=False) == 6, "net needs 6 convolution layers"'
)
Q2_HIDDEN = (
    "# Allowed calls: labkit.models.densenet.densenet_bc\n"
    "assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 10)"
)


def solutions_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["labkit"] = {"lab": LAB}
    text_meta = _meta("q3_text", solution=True, grade=True, points=2)
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy lab"),
        nbformat.v4.new_code_cell("import torch\nfrom labkit.models import densenet_bc"),
        answer("q1_numbers", "squares = [i * i for i in range(5)]\ntotal = sum(range(5))"),
        checks("q1_numbers", "total, squares", Q1_VISIBLE, Q1_HIDDEN, 1),
        nbformat.v4.new_code_cell("doubled = total * 2"),
        answer("q2_model", "net = densenet_bc(block_config=(1, 1), growth_rate=4)"),
        checks("q2_model", "net", Q2_VISIBLE, Q2_HIDDEN, 2),
        nbformat.v4.new_markdown_cell(
            "<!-- Answer q3_text -->\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
            metadata=text_meta,
        ),
    ]
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_solutions(folder: Path) -> Path:
    return write(solutions_notebook(), Path(folder) / f"{LAB}.ipynb")


def right(solutions: Path) -> nbformat.NotebookNode:
    """Every answer right, the free text answered."""
    nb = answered_notebook(solutions)
    cell = next(c for c in nb.cells if c.source.startswith("<!-- Answer q3_text"))
    cell.source = "<!-- Answer q3_text -->\nBecause the sum of 0..4 is 10."
    return nb


def set_answer(nb: nbformat.NotebookNode, grade_id: str, body: str) -> nbformat.NotebookNode:
    cell = next(c for c in nb.cells if c.source.startswith(f"# Answer {grade_id}"))
    cell.source = f"# Answer {grade_id}\n{body}"
    return nb
