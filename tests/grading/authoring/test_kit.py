"""The student kit: what `labkit release --kit` writes, and the check that it holds no answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.cli import main
from labkit.grading.authoring import kit as kit_module
from labkit.grading.authoring.kit import KitError, build_kit, check_kit, leaks, secret_lines
from labkit.grading.authoring.release import distinctive, lab_notebooks, release_text

ROOT = Path(__file__).resolve().parents[3]
SOLUTIONS = ROOT / "solutions"
ANSWER = "return math.pi * radius**2 * 1.0"  # toy lines no real file holds
HIDDEN = "assert abs(area(2.5) - 19.634954) < 1e-4"
GIVEN = "radius_values = [1.0, 2.0, 3.0]"  # given code, also repeated in the answer


def _meta(grade_id: str, *, solution: bool, grade: bool, points: int = 0) -> dict:
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution}
    if grade:
        meta["points"] = points
    return {"nbgrader": {**meta, "schema_version": 3}}


def _toy_solutions(folder: Path, given: bool = True) -> Path:
    """A solutions folder with one lab: an answer, its checks with hidden tests, and (`given`)
    a given line that the answer repeats (`labkit release --check` refuses that one)."""
    nb = nbformat.v4.new_notebook()
    answer = (
        "# Answer q1_area\nimport math\n\ndef area(radius):\n    ### BEGIN SOLUTION\n"
        f"    import numpy as np\n    {GIVEN if given else ''}\n"
        f"    # a comment of the model answer, long\n    {ANSWER}\n    ### END SOLUTION\n"
    )
    checks = (
        "# Checks q1_area: area\nassert area(1) > 3, 'area of the unit circle'\n"
        f"### BEGIN HIDDEN TESTS\n# Forbidden calls: numpy.pi\n{HIDDEN}\n### END HIDDEN TESTS\n"
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lab 01: areas"),
        nbformat.v4.new_code_cell(GIVEN if given else "radius = 1.0"),
        nbformat.v4.new_code_cell(answer, metadata=_meta("q1_area", solution=True, grade=False)),
        nbformat.v4.new_code_cell(
            checks, metadata=_meta("q1_area_test", solution=False, grade=True, points=1)
        ),
    ]
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "01_areas.ipynb")
    return folder


def _plant(path: Path, line: str) -> int:
    """Append `line` to the text file `path`; returns its 1-based line number."""
    text = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def _plant_in_notebook(path: Path, line: str) -> int:
    """Put `line` into a new code cell of the notebook `path`; returns its line in the file."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"x = 1\n{line}"))
    nbformat.write(nb, path)
    lines = path.read_text(encoding="utf-8").split("\n")
    return next(n for n, text in enumerate(lines, 1) if line in text)


def _structural(problems: list[str]) -> list[str]:
    """The problems that are not a line of an answer (those depend on the labs' progress)."""
    return [p for p in problems if ": holds a line of " not in p]


def test_the_kit_holds_what_students_need_and_nothing_else(tmp_path: Path) -> None:
    kit = build_kit(tmp_path / "kit", SOLUTIONS, check=False)
    labs = lab_notebooks(SOLUTIONS)
    assert sorted(p.name for p in (kit / "notebooks").iterdir()) == [p.name for p in labs]
    for lab in labs:  # the released notebooks, as `labkit release` writes them
        assert (kit / "notebooks" / lab.name).read_text(encoding="utf-8") == release_text(lab)
    for name in ("pyproject.toml", "environment.yml", "Makefile", "README.md", ".gitignore"):
        assert (kit / name).is_file(), name
    assert (kit / "labkit" / "__init__.py").is_file() and (kit / "labkit" / "cli.py").is_file()
    assert (kit / "data_prep" / "README.md").is_file()
    for name in ("solutions", "results", "benchmarks", "docs", "data", "runs", "RESULTS.md"):
        assert not (kit / name).exists(), name
    files = [p.relative_to(kit) for p in kit.rglob("*") if p.is_file()]
    assert [p for p in files if p.parts[0] == "tests"] == [Path("tests/test_kit.py")]
    assert not [p for p in files if p.suffix == ".ipynb" and p.parts[0] != "notebooks"]
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix == ".pyc"]
    assert not [p for p in files if any(part.endswith(".egg-info") for part in p.parts)]
    assert (kit / "pyproject.toml").read_bytes() == (ROOT / "pyproject.toml").read_bytes()
    assert _structural(check_kit(kit, SOLUTIONS)) == []
    own_test = (kit / "tests" / "test_kit.py").read_text(encoding="utf-8")
    assert not [t for t in secret_lines(SOLUTIONS) if t in own_test]  # holds no answer


def test_the_readme_and_makefile_set_the_kit_up(tmp_path: Path) -> None:
    kit = build_kit(tmp_path / "kit", _toy_solutions(tmp_path / "solutions"))
    readme = (kit / "README.md").read_text(encoding="utf-8")
    for words in ("make setup", "make lab", "pip install -e .", "Python 3.10", "make test"):
        assert words in readme, words
    assert "[`notebooks/01_areas.ipynb`](notebooks/01_areas.ipynb): Lab 01: areas" in readme
    assert "{{" not in readme
    if shutil.which("make") is None:
        pytest.skip("needs make")
    dry = ["make", "-s", "-n", "USER_ID=1000", "PYTHON=" + sys.executable]
    setup = subprocess.run(dry + ["setup"], cwd=kit, capture_output=True, text=True, check=True)
    assert "-m pip install -e ." in setup.stdout
    lab = subprocess.run(
        dry + ["lab", "STAMP=pyproject.toml"], cwd=kit, capture_output=True, text=True, check=True
    )
    assert lab.stdout.strip().endswith("jupyter lab notebooks/")


def test_secret_lines_follow_the_rule(tmp_path: Path) -> None:
    secret = secret_lines(_toy_solutions(tmp_path / "solutions"))
    assert secret == {
        ANSWER: "the answer to q1_area",
        HIDDEN: "the hidden tests of q1_area",
    }  # no import, no comment, no given line, no visible check


def test_the_check_finds_planted_answer_and_hidden_test_lines(tmp_path: Path) -> None:
    solutions = _toy_solutions(tmp_path / "solutions")
    kit = build_kit(tmp_path / "kit", solutions)
    assert check_kit(kit, solutions) == []
    package_file = kit / "labkit" / "plots.py"
    in_package = [_plant(package_file, f"    {ANSWER}"), _plant(package_file, HIDDEN)]
    _plant(package_file, "import numpy as np")  # an import, given code: never counted
    _plant(package_file, GIVEN)
    notebook = kit / "notebooks" / "01_areas.ipynb"
    in_notebook = [_plant_in_notebook(notebook, ANSWER), _plant_in_notebook(notebook, HIDDEN)]
    found = leaks(kit, secret_lines(solutions), shown="")
    assert found == [
        f"labkit/plots.py:{in_package[0]}: holds a line of the answer to q1_area: {ANSWER!r}",
        f"labkit/plots.py:{in_package[1]}: holds a line of the hidden tests of q1_area: {HIDDEN!r}",
        f"notebooks/01_areas.ipynb:{in_notebook[0]}: holds a line of the answer to q1_area: "
        f"{ANSWER!r}",
        f"notebooks/01_areas.ipynb:{in_notebook[1]}: holds a line of the hidden tests of "
        f"q1_area: {HIDDEN!r}",
    ]
    problems = check_kit(kit, solutions)
    assert f"{notebook} differs from the release of {solutions / '01_areas.ipynb'}" in problems
    assert f"{kit / 'labkit' / 'plots.py'}:{in_package[0]}: holds a line" in "\n".join(problems)


def test_the_check_finds_lines_in_other_files_and_json_strings(tmp_path: Path) -> None:
    solutions = _toy_solutions(tmp_path / "solutions")
    kit = build_kit(tmp_path / "kit", solutions)
    (kit / "results").mkdir()
    (kit / "results" / "log.json").write_text(f'{{"text": "x\\n{ANSWER}\\n"}}\n')
    (kit / "tests" / "test_answers.py").write_text(f"def test():\n    {HIDDEN}\n")
    problems = check_kit(kit, solutions, shown="kit")
    assert "kit/results must not be in a kit: remove it" in problems
    assert "kit/tests/test_answers.py is not the kit's own test: remove it" in problems
    leaked = [p.split(": holds a line of the ")[0] for p in problems if ": holds a " in p]
    assert leaked == ["kit/results/log.json:1", "kit/tests/test_answers.py:2"]


def test_a_non_empty_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solutions = _toy_solutions(tmp_path / "solutions")
    dest = tmp_path / "kit"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(KitError, match=r"exists and is not empty: remove it first \(rm -r "):
        build_kit(dest, solutions)
    argv = ["release", "--kit", str(dest), "--solutions", str(solutions)]
    assert main(argv) == 2
    assert "exists and is not empty" in capsys.readouterr().out
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    (dest / "notes.txt").unlink()  # an empty folder is fine
    assert (build_kit(dest, solutions) / "Makefile").is_file()


def test_never_writes_inside_the_solutions_or_the_package(tmp_path: Path) -> None:
    solutions = _toy_solutions(tmp_path / "solutions")
    before = sorted(solutions.rglob("*"))
    with pytest.raises(KitError, match="is inside"):
        build_kit(solutions / "kit", solutions)
    with pytest.raises(KitError, match="is inside"):
        build_kit(ROOT / "labkit" / "kit", solutions)
    assert sorted(solutions.rglob("*")) == before
    assert not (ROOT / "labkit" / "kit").exists()


def test_a_failed_build_leaves_no_kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    solutions = _toy_solutions(tmp_path / "solutions")
    config = (ROOT / "labkit" / "config.py").read_text(encoding="utf-8").split("\n")
    package_line = next(t for t in map(distinctive, config) if t.startswith("def "))
    nb = nbformat.read(solutions / "01_areas.ipynb", as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace(ANSWER, package_line)
    nbformat.write(nb, solutions / "01_areas.ipynb")
    with pytest.raises(KitError, match=r"labkit/config.py:\d+: holds a line of the answer to q1"):
        build_kit(tmp_path / "out" / "kit", solutions)  # the package holds an answer line
    assert os.listdir(tmp_path / "out") == []

    def broken(kit: Path, notebooks: list[Path]) -> None:
        (kit / "README.md").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(kit_module, "_fill", broken)
    with pytest.raises(OSError, match="disk full"):
        build_kit(tmp_path / "out" / "kit", solutions, check=False)
    assert os.listdir(tmp_path / "out") == []


def test_release_check_verifies_a_kit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solutions = _toy_solutions(tmp_path / "solutions", given=False)
    notebooks = tmp_path / "notebooks"
    assert main(["release", "--solutions", str(solutions), "--notebooks", str(notebooks)]) == 0
    kit = tmp_path / "kit"
    common = ["--solutions", str(solutions), "--notebooks", str(notebooks)]
    assert main(["release", "--kit", str(kit), *common]) == 0
    assert main(["release", "--check", *common]) == 0  # a scratch kit
    assert main(["release", "--check", "--kit", str(kit), *common]) == 0
    line = _plant(kit / "labkit" / "config.py", ANSWER)
    capsys.readouterr()
    assert main(["release", "--check", "--kit", str(kit), *common]) == 1
    out = capsys.readouterr().out
    assert f"{kit / 'labkit' / 'config.py'}:{line}: holds a line of the answer to q1_area" in out
    assert "release check: 1 problem(s)" in out


def test_the_kit_of_this_checkout_holds_no_answer(tmp_path: Path) -> None:
    kit = build_kit(tmp_path / "kit", SOLUTIONS, check=False)
    assert check_kit(kit, SOLUTIONS, shown="") == []


@pytest.mark.notebook
def test_the_kits_own_check_passes(tmp_path: Path) -> None:
    """The kit's suite, run with the kit's own package, on lab 02 (the quickest to its answer)."""
    kit = build_kit(tmp_path / "kit", SOLUTIONS, check=False)
    env = {**os.environ, "PYTHONPATH": str(kit), "LABKIT_DATA": str(ROOT / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        + ["tests", "-k", "02_densenet or has_notebooks"],
        cwd=kit, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
