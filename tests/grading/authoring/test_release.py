"""Release: solution regions become stubs, hidden tests vanish, outputs go, metadata stays."""

from pathlib import Path

import nbformat
import pytest

from labkit.grading.authoring.release import (
    check_release,
    release_all,
    release_notebook,
    release_text,
)


def _meta(grade_id: str, *, solution: bool, grade: bool, points: int = 0) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution}
    if grade:
        meta["points"] = points
    return {"nbgrader": {**meta, "schema_version": 3}}


def _solution_nb() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell(
        "import math\n"
        "def area(r):\n"
        "    ### BEGIN SOLUTION\n"
        "    return math.pi * r**2\n"
        "    ### END SOLUTION\n",
        metadata=_meta("q1", solution=True, grade=False),
    )
    answer.outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    answer.execution_count = 3
    tests = nbformat.v4.new_code_cell(
        "assert area(1) > 3\n### BEGIN HIDDEN TESTS\nassert abs(area(2) - 12.566) < 1e-3\n"
        "### END HIDDEN TESTS\nprint('checked')",
        metadata=_meta("q1_test", solution=False, grade=True, points=2),
    )
    prose = nbformat.v4.new_markdown_cell(
        "**Why?**\n\n### BEGIN SOLUTION\nBecause squares.\n### END SOLUTION",
        metadata=_meta("q1_text", solution=True, grade=False),
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab"), answer, tests, prose]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["labkit"] = {"lab": "02_x"}
    return nb


def _write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_release_replaces_solutions_and_removes_hidden_tests(tmp_path: Path) -> None:
    src = _write(_solution_nb(), tmp_path / "solutions" / "02_x.ipynb")
    before = src.read_bytes()
    dst = release_notebook(src, tmp_path / "notebooks" / "02_x.ipynb")
    nb = nbformat.read(dst, as_version=4)
    answer, tests, prose = nb.cells[1:]
    assert answer.source == (
        "import math\ndef area(r):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )
    assert answer.outputs == [] and answer.execution_count is None
    assert "12.566" not in tests.source and "HIDDEN" not in tests.source
    assert tests.source == "assert area(1) > 3\nprint('checked')"
    assert prose.source == "**Why?**\n\nYOUR ANSWER HERE"
    assert answer.metadata == _meta("q1", solution=True, grade=False)
    assert tests.metadata.nbgrader.points == 2
    assert "widgets" not in nb.metadata and nb.metadata.labkit.lab == "02_x"
    assert src.read_bytes() == before  # the solution is never touched


def test_markdown_answer_without_markers_is_replaced_whole(tmp_path: Path) -> None:
    nb = _solution_nb()
    nb.cells[3].source = "My whole answer."
    src = _write(nb, tmp_path / "01_x.ipynb")
    assert nbformat.reads(release_text(src), as_version=4).cells[3].source == "YOUR ANSWER HERE"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
    ],
)
def test_broken_markers_name_the_cell(tmp_path: Path, source: str, message: str) -> None:
    nb = _solution_nb()
    nb.cells[1].source = source
    src = _write(nb, tmp_path / "03_bad.ipynb")
    with pytest.raises(ValueError, match=message) as info:
        release_text(src)
    assert "03_bad.ipynb, cell 1" in str(info.value)


def test_duplicate_grade_ids_are_refused(tmp_path: Path) -> None:
    nb = _solution_nb()
    nb.cells[2].metadata = _meta("q1", solution=False, grade=True, points=1)
    src = _write(nb, tmp_path / "02_dup.ipynb")
    with pytest.raises(ValueError, match="share grade_id 'q1'"):
        release_text(src)


def test_check_release_reports_missing_stale_and_extra(tmp_path: Path) -> None:
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    _write(_solution_nb(), solutions / "02_a.ipynb")
    _write(_solution_nb(), solutions / "03_b.ipynb")
    assert len(check_release(solutions, notebooks)) == 2  # both missing
    release_all(solutions, notebooks)
    assert check_release(solutions, notebooks) == []
    (notebooks / "03_b.ipynb").write_text("{}")
    _write(_solution_nb(), notebooks / "04_c.ipynb")
    problems = check_release(solutions, notebooks)
    assert any("03_b.ipynb differs" in p for p in problems)
    assert any("04_c.ipynb has no solutions notebook" in p for p in problems)


def test_repository_notebooks_are_the_release_of_the_solutions() -> None:
    root = Path(__file__).resolve().parents[3]
    assert check_release(root / "solutions", root / "notebooks") == []


def test_answer_cells_keep_nothing_of_the_answer(tmp_path: Path) -> None:
    """Faults found by trying: an image attachment, extra metadata and solution-run timestamps
    survived the release."""
    nb = _solution_nb()
    prose = nb.cells[3]
    prose.source = "**Why?**\n\n### BEGIN SOLUTION\n![answer](attachment:a.png)\n### END SOLUTION"
    prose.attachments = {"a.png": {"image/png": "iVBORw0KGgo="}}
    prose.metadata["tags"] = ["model-answer"]
    nb.cells[1].metadata["execution"] = {"shell.execute_reply": "2026-11-30T13:00:00Z"}
    nb.cells[2].metadata["execution"] = {"shell.execute_reply": "2026-11-30T13:00:01Z"}
    src = _write(nb, tmp_path / "solutions" / "02_x.ipynb")
    released = nbformat.reads(release_text(src), as_version=4)
    answer, tests, prose = released.cells[1:]
    assert "attachments" not in prose and "a.png" not in release_text(src)
    assert set(prose.metadata) == {"nbgrader"} and set(answer.metadata) == {"nbgrader"}
    assert "execution" not in tests.metadata


def test_code_answer_without_a_solution_region_is_refused(tmp_path: Path) -> None:
    nb = _solution_nb()
    nb.cells[1].source = "import math\ndef area(r):\n    return math.pi * r**2\n"
    src = _write(nb, tmp_path / "solutions" / "02_x.ipynb")
    with pytest.raises(ValueError, match=r"answer cell 'q1' has no '### BEGIN SOLUTION'"):
        release_text(src)


def test_release_check_fails_when_an_answer_line_stands_in_the_student_notebook(
    tmp_path: Path,
) -> None:
    nb = _solution_nb()
    nb.cells.append(nbformat.v4.new_code_cell("print(math.pi * r**2)\n    return math.pi * r**2"))
    _write(nb, tmp_path / "solutions" / "02_x.ipynb")
    release_all(tmp_path / "solutions", tmp_path / "notebooks")
    problems = check_release(tmp_path / "solutions", tmp_path / "notebooks")
    assert len(problems) == 1
    assert "cell 4 holds a line of the answer to q1: 'return math.pi * r**2'" in problems[0]
