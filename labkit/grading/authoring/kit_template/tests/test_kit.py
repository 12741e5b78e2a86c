"""The kit's own check (`make test`): every lab notebook, as handed out, runs without an error up
to its first question, and that question asks for the answer (`NotImplementedError`, at once or
when the next cell calls a skeleton's method). It runs in the `smoke` profile: a few minutes."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

KIT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((KIT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def _smoke_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The kernel runs the smoke profile, draws no window, keeps its runs in a scratch folder."""
    monkeypatch.setenv("LABKIT_PROFILE", "smoke")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))


def _first_answer_cell(nb: nbformat.NotebookNode) -> int:
    """Index of the first code cell a student fills in."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            return index
    raise AssertionError("the notebook has no question cell")


def test_the_kit_has_notebooks() -> None:
    assert NOTEBOOKS, f"no lab notebook (NN_name.ipynb) in {KIT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_up_to_its_first_question(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    stop = _first_answer_cell(nb)
    nb.cells = nb.cells[: stop + 2]  # the question, and the cell that runs a skeleton's code
    client = NotebookClient(
        nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    for index, cell in enumerate(nb.cells[:stop]):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", (
                f"{path.name}, cell {index + 1} failed before the first question: "
                f"{output.ename}: {output.evalue}"
            )
    asked = [o.ename for c in nb.cells[stop:] for o in c.get("outputs", []) if "ename" in o]
    assert asked[:1] == ["NotImplementedError"], (
        f"{path.name}: the first question (cell {stop + 1}) should ask for the answer with "
        f"NotImplementedError, got {asked[:1] or 'no error'}"
    )
