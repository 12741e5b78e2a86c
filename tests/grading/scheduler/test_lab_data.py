"""The grader asks each lab's module which built-in data its notebook needs, and writes it before
sandboxed kernels start (they see the data folder read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.grading.scheduler.lab_data import builtin_birds, lab_module, write_lab_data
from labkit.labs.birds import load_lab_birds, load_lab_source

SOLUTIONS = Path(__file__).resolve().parents[3] / "solutions"
NOTEBOOKS = sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
BIRD_LABS = ["01_vgg_receptive_fields", "04_bcnn_hbp", "05_opam"]


def _lab(notebook: str) -> str:
    """The lab a solutions notebook names in its `labkit.lab` metadata."""
    metadata = json.loads((SOLUTIONS / notebook).read_text(encoding="utf-8"))["metadata"]
    return metadata["labkit"]["lab"]


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_lab_notebook_names_a_lab_module(notebook: str) -> None:
    lab = _lab(notebook)
    module = lab_module(lab)
    assert module is not None and module.LAB == lab == Path(notebook).stem


@pytest.mark.parametrize("lab", [None, "99_toy", "05_settings", "01_opam", "opam", "4_bcnn hbp"])
def test_a_lab_without_a_lab_module_needs_only_the_digits(lab: str | None) -> None:
    assert builtin_birds(lab, "smoke") == ()


@pytest.mark.parametrize("lab", ["02_densenet_resnext", "03_facenet_knn"])
def test_the_digit_labs_need_only_the_digits(lab: str, tmp_path: Path) -> None:
    assert builtin_birds(lab, "smoke") == () and builtin_birds(lab, "full") == ()
    assert [p.name for p in write_lab_data(lab, "smoke", tmp_path)] == ["digits"]


@pytest.mark.slow
@pytest.mark.parametrize("lab", BIRD_LABS)
def test_a_bird_lab_loads_its_birds_from_what_the_grader_wrote(lab: str, tmp_path: Path) -> None:
    """After the grader's write, the lab's own birds and source species load without writing a
    file, as they must in the sandbox."""
    folders = write_lab_data(lab, "smoke", tmp_path)
    assert len(folders) == 1 + len(builtin_birds(lab, "smoke")) >= 2  # the digits, the birds
    before = _files(tmp_path)
    settings = lab_module(lab).settings("smoke")
    load_lab_birds(settings, root=tmp_path, verbose=False)
    load_lab_source(settings, root=tmp_path, verbose=False)
    assert _files(tmp_path) == before
