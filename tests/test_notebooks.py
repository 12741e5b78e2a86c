"""Each student notebook runs, as released, up to its first answer cell, whose stub asks for it
(at once, or when the next cell calls a skeleton's method)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
STUDENT_NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _first_answer_cell(nb: nbformat.NotebookNode) -> int:
    """Index of the first code cell a student must fill in."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            return index
    raise AssertionError("the notebook has no answer cell")


@pytest.mark.notebook
@pytest.mark.parametrize("path", STUDENT_NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_runs_up_to_its_first_answer(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    stop = _first_answer_cell(nb)
    nb.cells = nb.cells[: stop + 2]  # the answer, and the cell that runs a skeleton's code
    NotebookClient(
        nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells[:stop]:
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name}: cell failed before the first answer: {errors[0].ename}"
    asked = [o.ename for c in nb.cells[stop:] for o in c.get("outputs", []) if "ename" in o]
    assert asked[:1] == ["NotImplementedError"]  # the stub asks for the answer
