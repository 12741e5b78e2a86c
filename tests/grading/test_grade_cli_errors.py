"""`labkit grade` refuses paths that cannot work before it runs anything, naming the remedy."""

from __future__ import annotations

from pathlib import Path

import pytest
import toylab

from labkit.cli import main
from labkit.grading.authoring.release import release_notebook


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, Path]:
    solutions = toylab.write_solutions(tmp_path / "solutions")
    subs = tmp_path / "submissions"
    toylab.write(toylab.right(solutions), subs / "alice.ipynb")
    return solutions, subs


def _grade(capsys, *args: str) -> tuple[int, str]:
    code = main(["grade", *args])
    return code, capsys.readouterr().out


def test_out_that_is_a_file_or_inside_the_submissions(course, tmp_path: Path, capsys) -> None:
    solutions, subs = course
    (tmp_path / "out.txt").write_text("")
    code, out = _grade(capsys, str(solutions), str(subs), "--out", str(tmp_path / "out.txt"))
    assert code == 2 and "is a file: pass a folder" in out and "grading" not in out
    code, out = _grade(capsys, str(solutions), str(subs), "--out", str(subs / "graded"))
    assert code == 2 and "inside the submissions folder" in out
    assert not (subs / "graded").exists()


def test_solutions_that_are_not_a_solutions_notebook(course, tmp_path: Path, capsys) -> None:
    solutions, subs = course
    out = str(tmp_path / "out")
    code, printed = _grade(capsys, str(solutions.parent), str(subs), "--out", out)
    assert code == 2 and "is not a notebook file: pass the lab's solutions notebook" in printed
    assert "grading" not in printed
    released = release_notebook(solutions, tmp_path / "notebooks" / solutions.name)
    code, printed = _grade(capsys, str(released), str(subs), "--out", out)
    assert code == 2 and "looks like a released student notebook" in printed


def test_submissions_that_are_a_file(course, tmp_path: Path, capsys) -> None:
    solutions, subs = course
    code, out = _grade(
        capsys, str(solutions), str(subs / "alice.ipynb"), "--out", str(tmp_path / "out")
    )
    assert code == 2 and "is not a folder of submissions: pass the folder" in out
