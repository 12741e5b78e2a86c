"""The question protocol: markers, regions, grade_ids, parsing a solutions notebook, locating."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
import toylab
from answered import answered_notebook

from labkit.grading.authoring.locate import answer_text, locate
from labkit.grading.authoring.protocol import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    LabSpec,
    check_grade_ids,
    hidden_line_numbers,
    marker,
    parse_solutions,
    regions,
)
from labkit.grading.authoring.release import release_text
from labkit.grading.worker.steps import plan


def test_parse_toy_solutions(tmp_path: Path) -> None:
    spec = parse_solutions(toylab.write_solutions(tmp_path))
    assert spec.lab == toylab.LAB
    assert spec.max_points == {"q1_numbers": 1.0, "q2_model": 2.0, "q3_text": 2.0}
    q1, q2, q3 = spec.questions
    assert (q1.kind, q1.names, q1.manual) == ("code", ("total", "squares"), False)
    assert q2.names == ("net",) and q2.checks[0].grade_id == "q2_model_test"
    assert (q3.kind, q3.manual, q3.checks) == ("text", True, ())
    check = q1.checks[0]
    hidden = [check.code.split("\n")[n - 1] for n in check.hidden_lines]
    assert "assert total == 10" in hidden and "SECRET_HIDDEN_LINE" not in check.visible_code
    assert LabSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("first_line", "error"),
    [
        ("# checks for q1", "must start with '# Checks"),
        ("# Checks q1_numbers: total", "neither in the marker line"),  # squares not listed
        ("# Checks q9_nothing: total, squares", "no answer cell has"),
    ],
)
def test_broken_checks_cells_are_named(tmp_path: Path, first_line: str, error: str) -> None:
    nb = toylab.solutions_notebook()
    cell = nb.cells[3]
    cell.source = "\n".join([first_line, *cell.source.split("\n")[1:]])
    with pytest.raises(ValueError, match=error):
        parse_solutions(nb)


def test_answer_cell_without_marker_is_refused() -> None:
    nb = toylab.solutions_notebook()
    nb.cells[2].source = nb.cells[2].source.replace("# Answer q1_numbers\n", "")
    with pytest.raises(ValueError, match="cell 2: an answer cell must start with"):
        parse_solutions(nb)


def test_locate_by_metadata_then_marker(tmp_path: Path) -> None:
    solutions = toylab.write_solutions(tmp_path)
    spec, nb = parse_solutions(solutions), toylab.right(solutions)
    assert locate(nb, spec).answers == {"q1_numbers": 2, "q2_model": 5, "q3_text": 7}
    assert locate(nb, spec).skip == {3, 6}
    stripped = copy.deepcopy(nb)
    for cell in stripped.cells:
        cell.metadata = {}
    assert locate(stripped, spec).answers == locate(nb, spec).answers
    assert locate(stripped, spec).skip == {3, 6}


def test_duplicated_grade_id_prefers_the_cell_with_the_marker(tmp_path: Path) -> None:
    solutions = toylab.write_solutions(tmp_path)
    spec, nb = parse_solutions(solutions), toylab.right(solutions)
    copied = copy.deepcopy(nb.cells[2])  # a copied cell keeps the grade_id ...
    copied.source = "total = 0  # scratch work"  # ... but not the marker
    nb.cells.insert(2, copied)
    found = locate(nb, spec)
    assert found.answers["q1_numbers"] == 3 and "2 cells share" in found.notes[0]
    assert found.graded_at["q1_numbers"] == 3  # the cell before its checks cell
    both = copy.deepcopy(nb)
    both.cells[2].source = both.cells[3].source  # both carry id and marker: the last one
    assert locate(both, spec).answers["q1_numbers"] == 3  # (before issue 10: the first)


def test_checks_cells_are_skipped_however_they_are_marked(tmp_path: Path) -> None:
    spec = parse_solutions(toylab.write_solutions(tmp_path))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("# Checks q1_numbers: total\nprint('ok')"),  # marker only
        nbformat.v4.new_code_cell("y = 2", metadata={"nbgrader": {"grade": True}}),
        nbformat.v4.new_code_cell("# Answer q1_numbers\ntotal = 10"),
    ]
    found = locate(nb, spec)
    assert found.skip == {0, 1} and found.answers["q1_numbers"] == 2


def test_marker_text_a_student_writes_changes_nothing(tmp_path: Path) -> None:
    """A fault found by trying: an answer holding the hidden-tests marker's text in a comment
    or a string was taken for a checks cell (0 points, "no answer cell found")."""
    solutions = toylab.write_solutions(tmp_path)
    spec, nb = parse_solutions(solutions), toylab.right(solutions)
    quoted = f"{nb.cells[2].source}\n# {BEGIN_HIDDEN}\nnote = '{BEGIN_HIDDEN}'"
    nb.cells[2].source = quoted
    found = locate(nb, spec)
    assert found.answers["q1_numbers"] == 2 and 2 not in found.skip
    nb.cells[4].source = f"doubled = total * 2  # {BEGIN_HIDDEN}"  # an ordinary cell too
    assert 4 not in locate(nb, spec).skip


def test_copied_answer_is_graded_where_the_notebook_reaches_its_checks(tmp_path: Path) -> None:
    """A fault found by trying: an abandoned first try above the right answer was graded."""
    solutions = toylab.write_solutions(tmp_path)
    spec, nb = parse_solutions(solutions), toylab.right(solutions)
    first_try = copy.deepcopy(nb.cells[2])
    first_try.source = "# Answer q1_numbers\nsquares = []\ntotal = 0"
    nb.cells.insert(2, first_try)  # cells: 2 first try, 3 right answer, 4 checks
    found = locate(nb, spec)
    assert found.graded_at["q1_numbers"] == 3 and found.answers["q1_numbers"] == 3
    assert "graded the values after cell 4" in found.notes[0]
    del nb.cells[4]  # the checks cell deleted: up to the next question's answer cell (5)
    assert locate(nb, spec).graded_at["q1_numbers"] == 4


def test_checks_cells_moved_together_grade_each_question_after_its_own_cells(
    tmp_path: Path,
) -> None:
    """Both checks cells moved to the end: each question is graded after a cell of its own,
    never before its answer; the question whose checks come later takes the cell before."""
    solutions = toylab.write_solutions(tmp_path)
    spec, nb = parse_solutions(solutions), toylab.right(solutions)
    checks = [nb.cells.pop(6), nb.cells.pop(3)]  # cells: 0 md, 1 imports, 2 q1, 3 doubled, 4 q2
    nb.cells[5:5] = checks  # ... 5 q2 checks, 6 q1 checks, then the text answer
    steps, unlocated = plan(nb, spec)
    graded = {step.question.grade_id: step.index for step in steps if step.question}
    assert not unlocated and graded == {"q1_numbers": 3, "q2_model": 4}


def test_other_labs_markers_are_noticed(tmp_path: Path) -> None:
    spec = parse_solutions(toylab.write_solutions(tmp_path))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("# Answer q1_triplet_loss\nloss = 0.2")]
    found = locate(nb, spec)
    assert not found.found_any and found.other_ids == {"q1_triplet_loss"}


def test_answer_text_and_markers() -> None:
    cell = nbformat.v4.new_markdown_cell("\n<!-- Answer q3_text -->\nBecause.\n")
    assert marker(cell) == ("answer", "q3_text") and answer_text(cell) == "Because."
    stub = nbformat.v4.new_markdown_cell("<!-- Answer q3_text -->\nYOUR ANSWER HERE")
    assert answer_text(stub) == ""
    heading = nbformat.v4.new_markdown_cell("# Answer q3_text")  # a heading is not a marker
    assert marker(heading) is None


def test_answered_notebook_puts_the_answers_back(tmp_path: Path) -> None:
    nb = answered_notebook(toylab.write_solutions(tmp_path))
    assert "total = sum(range(5))" in nb.cells[2].source
    assert "BEGIN SOLUTION" not in nb.cells[2].source
    assert "SECRET_HIDDEN_LINE" not in nb.cells[3].source


def test_regions_finds_several_and_indented_regions() -> None:
    lines = [
        "x = 1",
        BEGIN_SOLUTION,
        "y = 2",
        END_SOLUTION,
        "def f():",
        f"    {BEGIN_SOLUTION}  ",  # indented, trailing blanks: still a marker
        "    return 3",
        f"    {END_SOLUTION}",
        f"# {BEGIN_SOLUTION} in a comment is no marker",
    ]
    assert regions(lines, BEGIN_SOLUTION, END_SOLUTION, "cell 1") == [(2, 4), (6, 8)]
    assert regions(["x = 1"], BEGIN_SOLUTION, END_SOLUTION, "cell 1") == []
    assert regions(lines, BEGIN_HIDDEN, END_HIDDEN, "cell 1") == []  # other markers ignored


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ([BEGIN_HIDDEN, "x", BEGIN_HIDDEN, END_HIDDEN], r"line 3: .* inside another region"),
        (["x", END_HIDDEN], r"line 2: '### END HIDDEN TESTS' without '### BEGIN HIDDEN TESTS'"),
        (["x", f"  {BEGIN_HIDDEN}", "y"], r"line 2: .* never closed .*add the end marker"),
        ([BEGIN_HIDDEN, END_HIDDEN, END_HIDDEN], r"line 3: .* without"),
    ],
)
def test_regions_refuses_broken_markers_naming_the_place(lines: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error) as info:
        regions(lines, BEGIN_HIDDEN, END_HIDDEN, "lab.ipynb, cell 4")
    assert str(info.value).startswith("lab.ipynb, cell 4, line ")


def test_hidden_line_numbers_cover_each_region_with_its_markers() -> None:
    source = "\n".join(
        ["a", BEGIN_HIDDEN, "b", END_HIDDEN, "c", f"    {BEGIN_HIDDEN}", "d", f"    {END_HIDDEN}"]
    )
    assert hidden_line_numbers(source, "cell 1") == (2, 3, 4, 6, 7, 8)
    with pytest.raises(ValueError, match="cell 1, line 1: .* never closed"):
        hidden_line_numbers(BEGIN_HIDDEN, "cell 1")


def test_release_and_parse_solutions_refuse_a_hidden_region_alike(tmp_path: Path) -> None:
    nb = toylab.solutions_notebook()
    nb.cells[3].source = nb.cells[3].source.replace(END_HIDDEN, "")  # unclosed, in a checks cell
    path = toylab.write(nb, tmp_path / "99_toy.ipynb")
    for read in (release_text, parse_solutions):
        with pytest.raises(ValueError, match=r"99_toy.ipynb, cell 3, line 3: .* never closed"):
            read(path)


def test_check_grade_ids_maps_graded_cells() -> None:
    ids = check_grade_ids(toylab.solutions_notebook(), "toy")
    assert ids == {
        "q1_numbers": 2,
        "q1_numbers_test": 3,
        "q2_model": 5,
        "q2_model_test": 6,
        "q3_text": 7,
    }


@pytest.mark.parametrize(
    ("cell", "grade_id", "error"),
    [
        (3, "", "99_toy.ipynb, cell 3: nbgrader cell without a grade_id"),
        (5, "q1_numbers", "99_toy.ipynb, cells 2 and 5 share grade_id 'q1_numbers'"),
        (6, "q2_model", "99_toy.ipynb, cells 5 and 6 share grade_id 'q2_model'"),  # answer, checks
    ],
)
def test_release_and_parse_solutions_share_the_grade_id_check(
    tmp_path: Path, cell: int, grade_id: str, error: str
) -> None:
    nb = toylab.solutions_notebook()
    nb.cells[cell].metadata["nbgrader"]["grade_id"] = grade_id
    path = toylab.write(nb, tmp_path / "99_toy.ipynb")
    for check in (
        lambda: check_grade_ids(nb, str(path)),
        lambda: release_text(path),
        lambda: parse_solutions(path),
    ):
        with pytest.raises(ValueError, match=error):
            check()


def test_answered_notebook_keeps_what_surrounds_the_solution_markers(tmp_path: Path) -> None:
    nb = answered_notebook(toylab.write_solutions(tmp_path))
    assert nb.cells[2].source.startswith("# Answer q1_numbers\n")
    assert END_SOLUTION not in nb.cells[7].source and "Because." in nb.cells[7].source
