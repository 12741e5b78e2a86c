"""Every built-in data set written in one call, once (the grader's sandbox reads them only)."""

from __future__ import annotations

from pathlib import Path

from labkit.data.birds import synthetic_birds_folder
from labkit.data.builtin import BUILTIN_WRITERS, write_builtin_data
from labkit.data.cub import read_cub_index
from labkit.data.synthbirds import SynthBirdsSpec


def test_write_builtin_data_writes_each_set_once(tmp_path: Path) -> None:
    folders = write_builtin_data(tmp_path)
    assert folders == [tmp_path / "builtin" / name for name in BUILTIN_WRITERS]
    digits = tmp_path / "builtin" / "digits"
    assert sorted(p.name for p in (digits / "train").iterdir()) == [str(d) for d in range(10)]
    stamps = {p: p.stat().st_mtime_ns for p in digits.rglob("*.csv")}
    assert write_builtin_data(tmp_path) == folders
    assert {p: p.stat().st_mtime_ns for p in digits.rglob("*.csv")} == stamps


def test_write_builtin_data_writes_the_given_synthetic_birds(tmp_path: Path) -> None:
    spec = SynthBirdsSpec(num_classes=2, train_per_class=1, test_per_class=1, image_size=32)
    folders = write_builtin_data(tmp_path, birds=[spec])
    assert folders[-1] == synthetic_birds_folder(tmp_path, spec)
    assert read_cub_index(folders[-1]).num_classes == 2
