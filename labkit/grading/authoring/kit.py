"""The student kit: the folder an instructor publishes, and the check that it holds no answer.

`build_kit(dest)` writes the released notebooks (`notebooks/`, as `labkit release` makes them),
the package (`labkit/`), `data_prep/`, `pyproject.toml` and `environment.yml` from the checkout,
and from `kit_template/` a README and a Makefile written for students and the kit's own check
(`tests/test_kit.py`: every notebook runs up to its first answer). Nothing else: no
`solutions/`, no executed solutions (`results/`), no tests of the repository, no benchmarks.

The leak rule (`secret_lines`, `check_kit`), for every lab notebook of the solutions folder:

- a *secret* line is a line inside a solution region (code or markdown; a markdown answer cell
  without markers counts whole) or inside a hidden-tests region, stripped, that
  `labkit.grading.authoring.release.distinctive` keeps: at least `MIN_LEAK_CHARS` (12)
  characters and not a comment;
- except an import (`import x`, `from x import y`), which names a module, not an answer;
- and except a line that also stands, stripped, outside every region of some solutions
  notebook's cell (given code, prose, a visible check): the released notebooks hand it out
  anyway, so it cannot give an answer away.

A kit file offends where one of its lines, stripped, is a secret line; in a notebook or JSON
file, also where a JSON string on the line holds one (source lines, outputs). Every file of the
kit is read, the package included; folders that using the kit makes (`.venv` and other hidden
folders, `__pycache__`, `*.egg-info`, and `data/`, `runs/`, `build/` at the top) are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

import labkit
from labkit.grading.authoring.protocol import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CHECKS,
    END_HIDDEN,
    END_SOLUTION,
    nbgrader_meta,
    regions,
)
from labkit.grading.authoring.release import distinctive, lab_notebooks, region_lines, release_text

KIT_TEMPLATE = Path(__file__).with_name("kit_template")
# the checkout the package, data_prep/, ... are copied from: the folder that holds labkit
CHECKOUT = Path(labkit.__file__).resolve().parents[1]
COPIED = ("labkit", "data_prep", "pyproject.toml", "environment.yml")
# from the template: (path there, path in the kit)
TEMPLATE_FILES = (
    ("README.md", "README.md"),
    ("Makefile", "Makefile"),
    ("gitignore", ".gitignore"),
    ("tests/test_kit.py", "tests/test_kit.py"),
)
FORBIDDEN = ("solutions", "results", "benchmarks")  # what a kit must never hold at its top
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
_MADE_BY_USE = {"data", "runs", "build"}  # top-level folders that using a kit writes
_IMPORT = re.compile(r"^(import\s+\S|from\s+\S+\s+import\s)")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class KitError(ValueError):
    """A kit cannot be written there (the message says why and what to do)."""


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it (both resolved)."""
    return path.resolve().is_relative_to(Path(folder).resolve())


def _refuse(dest: Path, solutions_dir: Path, checkout: Path) -> None:
    """Raise KitError where writing a kit to `dest` would be wrong."""
    if dest.exists() and not dest.is_dir():
        raise KitError(f"{dest} is a file: pass a new folder for the kit")
    if dest.is_dir() and any(dest.iterdir()):
        raise KitError(
            f"{dest} exists and is not empty: remove it first (rm -r {dest}) or pass a new folder"
        )
    sources = [Path(solutions_dir)] + [checkout / name for name in COPIED]
    for source in sources:
        if _inside(dest, source):
            raise KitError(f"{dest} is inside {source}: pass a folder outside it")


def _release_notebooks(solutions_dir: Path, notebooks_dir: Path) -> list[Path]:
    """The released lab notebooks of `solutions_dir`, written into `notebooks_dir`."""
    notebooks_dir.mkdir(parents=True)
    written = []
    for solution in lab_notebooks(solutions_dir):
        written.append(notebooks_dir / solution.name)
        written[-1].write_text(release_text(solution), encoding="utf-8")
    return written


def _lab_titles(notebooks: list[Path]) -> str:
    """One Markdown line per notebook: its link and the title of its first cell."""
    lines = []
    for path in notebooks:
        cells = nbformat.read(path, as_version=4).cells
        title = cells[0].source.split("\n")[0].lstrip("# ").strip() if cells else path.stem
        lines.append(f"- [`notebooks/{path.name}`](notebooks/{path.name}): {title}")
    return "\n".join(lines)


def _fill(kit: Path, notebooks: list[Path]) -> None:
    """Write everything but the notebooks into the (new, empty) folder `kit`."""
    for name in COPIED:
        source = CHECKOUT / name
        if source.is_dir():
            shutil.copytree(source, kit / name, ignore=_NOT_COPIED)
        else:
            shutil.copy2(source, kit / name)
    for there, here in TEMPLATE_FILES:
        text = (KIT_TEMPLATE / there).read_text(encoding="utf-8")
        if here == "README.md":
            text = text.replace("{{labs}}", _lab_titles(notebooks))
        (kit / here).parent.mkdir(parents=True, exist_ok=True)
        (kit / here).write_text(text, encoding="utf-8")


def build_kit(dest: Path | str, solutions_dir: Path | str, *, check: bool = True) -> Path:
    """Write the student kit of `solutions_dir` into the new folder `dest`; returns `dest`.

    The kit is written next to `dest` under a temporary name and renamed into place when it is
    complete (and, with `check`, holds no secret line), so a failed build leaves no kit behind.
    Raises KitError for a `dest` that exists and is not empty, or that lies inside the solutions
    or a folder the kit copies, and, with `check`, for a kit that holds an answer (listing every
    offending line).
    """
    dest, solutions_dir = Path(dest), Path(solutions_dir)
    _refuse(dest, solutions_dir, CHECKOUT)
    if not lab_notebooks(solutions_dir):
        raise KitError(f"no lab notebook (NN_name.ipynb) in {solutions_dir}: pass --solutions")
    missing = [name for name in COPIED if not (CHECKOUT / name).exists()]
    if missing:
        raise KitError(f"{CHECKOUT} is not a labkit checkout: it lacks {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        _fill(work, _release_notebooks(solutions_dir, work / "notebooks"))
        problems = check_kit(work, solutions_dir, shown=dest) if check else []
        if problems:
            raise KitError(
                f"the kit would hold {len(problems)} line(s) of answers or hidden tests, so it "
                "was not written:\n" + "\n".join(problems)
            )
        work.chmod(0o755)  # mkdtemp makes it private; a kit is for publishing
        os.replace(work, dest)  # atomic; replaces an empty folder
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _hidden_owner(cell: dict, index: int) -> str:
    """The grade_id of the answer a checks cell checks (its `# Checks` line), else its own."""
    first = cell["source"].split("\n", 1)[0].strip()
    match = CHECKS.match(first)
    return match.group(1) if match else str(nbgrader_meta(cell).get("grade_id", index))


def _unmarked_answer(cell: dict) -> bool:
    """A markdown answer cell without a solution region: release replaces all of it."""
    lines = cell["source"].split("\n")
    return (
        cell["cell_type"] == "markdown"
        and bool(nbgrader_meta(cell).get("solution"))
        and not any(line.strip() == BEGIN_SOLUTION for line in lines)
    )


def _public_lines(cell: dict, where: str) -> set[str]:
    """The stripped lines of `cell` that its release keeps (outside every region)."""
    if _unmarked_answer(cell):
        return set()
    lines = cell["source"].split("\n")
    inside = {
        number
        for begin, end in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN))
        for first, last in regions(lines, begin, end, where)
        for number in range(first, last + 1)
    }
    return {line.strip() for n, line in enumerate(lines, 1) if n not in inside}


def secret_lines(solutions_dir: Path | str) -> dict[str, str]:
    """Each line of a model answer or hidden test that no kit file may hold -> what it is
    ("the answer to q1", "the hidden tests of q1"); the rule is the module's docstring."""
    secret: dict[str, str] = {}
    public: set[str] = set()
    for path in lab_notebooks(Path(solutions_dir)):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            where = f"{path}, cell {index}"
            answer = f"the answer to {nbgrader_meta(cell).get('grade_id', index)}"
            found = region_lines(cell, BEGIN_SOLUTION, END_SOLUTION, where)
            if _unmarked_answer(cell):
                found = [text for text in map(distinctive, cell.source.split("\n")) if text]
            for text in found:
                secret.setdefault(text, answer)
            hidden = f"the hidden tests of {_hidden_owner(cell, index)}"
            for text in region_lines(cell, BEGIN_HIDDEN, END_HIDDEN, where):
                secret.setdefault(text, hidden)
            public |= _public_lines(cell, where)
    return {
        text: what
        for text, what in secret.items()
        if text not in public and not _IMPORT.match(text)
    }


def _kit_files(kit: Path) -> list[Path]:
    """Every file of the kit that publishing it hands out (what using it makes is skipped)."""
    files = []
    for folder, subfolders, names in os.walk(kit):
        top = Path(folder) == kit
        subfolders[:] = sorted(
            d
            for d in subfolders
            if not d.startswith(".")
            and d != "__pycache__"
            and not d.endswith(".egg-info")
            and not (top and d in _MADE_BY_USE)
        )
        files += [Path(folder) / name for name in sorted(names)]
    return files


def _candidates(line: str, json_strings: bool) -> list[str]:
    """The texts of one file line that could be a secret line: the line, and in JSON each line
    of each string on it (a notebook's source and output lines are JSON strings)."""
    texts = [line]
    if json_strings:
        for literal in _JSON_STRING.findall(line):
            try:
                texts += json.loads(literal).split("\n")
            except json.JSONDecodeError:
                continue
    return [text for text in map(distinctive, texts) if text]


def leaks(kit: Path | str, secret: dict[str, str], shown: Path | str | None = None) -> list[str]:
    """`file:line: holds a line of ...` for every kit line that is a secret line.

    Paths are shown under `shown` (default: `kit` itself).
    """
    kit = Path(kit)
    problems = []
    for path in _kit_files(kit):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # an image or other binary file holds no line of code
        name = Path(shown if shown is not None else kit) / path.relative_to(kit)
        is_json = path.suffix in (".ipynb", ".json")
        for number, line in enumerate(text.split("\n"), 1):
            for candidate in dict.fromkeys(_candidates(line, is_json)):
                if candidate in secret:
                    problems.append(
                        f"{name}:{number}: holds a line of {secret[candidate]}: {candidate[:60]!r}"
                    )
    return problems


def check_kit(
    kit: Path | str, solutions_dir: Path | str, shown: Path | str | None = None
) -> list[str]:
    """Problems of the kit in `kit` for the solutions in `solutions_dir` (empty: ok): a missing
    or stale part, something a kit must not hold, and every line of an answer or hidden test."""
    kit, solutions_dir = Path(kit), Path(solutions_dir)
    shown = Path(shown if shown is not None else kit)
    if not kit.is_dir():
        return [f"{kit} is not a folder: build the kit with `labkit release --kit {kit}`"]
    expected = [kit / name for name in COPIED] + [kit / here for _, here in TEMPLATE_FILES]
    stale = [f"{shown / p.relative_to(kit)} is missing" for p in expected if not p.exists()]
    for solution in lab_notebooks(solutions_dir):
        student = kit / "notebooks" / solution.name
        if not student.is_file():
            stale.append(f"{shown / 'notebooks' / solution.name} is missing")
        elif student.read_text(encoding="utf-8") != release_text(solution):
            stale.append(
                f"{shown / 'notebooks' / solution.name} differs from the release of {solution}"
            )
    if stale and shown != Path():
        stale.append(f"rebuild the kit: rm -r {shown} && labkit release --kit {shown}")
    problems = stale + [
        f"{shown / name} must not be in a kit: remove it"
        for name in FORBIDDEN
        if (kit / name).exists()
    ]
    own_tests = {kit / here for there, here in TEMPLATE_FILES if there.startswith("tests/")}
    for path in _kit_files(kit):
        relative = path.relative_to(kit)
        if relative.parts[0] == "tests" and path not in own_tests:
            problems.append(f"{shown / relative} is not the kit's own test: remove it")
        elif path.suffix == ".ipynb" and relative.parent != Path("notebooks"):
            problems.append(f"{shown / relative} is a notebook outside notebooks/: remove it")
    return problems + leaks(kit, secret_lines(solutions_dir), shown)
