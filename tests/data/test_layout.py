"""Writing the split layout atomically, and checking a split's CSV against its files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import labkit.data.layout as layout
from labkit.data.layout import MARKER, is_complete, sample_per_class, write_split_layout


def _splits(n: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    labels = np.tile(np.arange(3), n)
    images = np.zeros((len(labels), 6, 6), dtype=np.uint8)
    return {"train": (images, labels), "test": (images[:3], labels[:3])}


def test_interrupted_write_leaves_no_folder_and_is_redone(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = layout._write_split

    def dies_on_test_split(root: Path, split: str, *args) -> None:
        calls.append(split)
        if split == "test":
            raise KeyboardInterrupt  # the kernel interrupted halfway
        real(root, split, *args)

    monkeypatch.setattr(layout, "_write_split", dies_on_test_split)
    with pytest.raises(KeyboardInterrupt):
        write_split_layout(tmp_path / "out", _splits(), "v1")
    assert calls == ["train", "test"]
    assert list(tmp_path.iterdir()) == []  # neither a half folder nor a temporary one
    monkeypatch.undo()
    root = write_split_layout(tmp_path / "out", _splits(), "v1")
    assert is_complete(root, "v1") and (root / "test" / "2" / "00002.png").is_file()


def test_new_version_replaces_old_write(tmp_path: Path) -> None:
    root = write_split_layout(tmp_path / "out", _splits(2), "v1")
    write_split_layout(root, _splits(3), "v2")
    assert (root / MARKER).read_text() == "v2\n"
    assert len(list((root / "train").rglob("*.png"))) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_sample_per_class_is_balanced_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [5, 6, 7, 8])
    chosen, rest = sample_per_class(labels, 3, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [3, 3, 3, 3]
    assert sorted(np.concatenate([chosen, rest]).tolist()) == list(range(len(labels)))
    assert np.array_equal(chosen, sample_per_class(labels, 3, seed=0)[0])
    assert not np.array_equal(chosen, sample_per_class(labels, 3, seed=1)[0])


def test_validate_absent_csv_is_fine(tmp_path: Path) -> None:
    assert layout.validate_split_csv(tmp_path, "train", "remedy") == 0


def test_unreadable_csv_names_it(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=rf"cannot read {re.escape(str(tmp_path / 'train.csv'))}"):
        layout.validate_split_csv(tmp_path, "train", "rebuild it")


def test_a_write_finished_meanwhile_by_another_process_is_kept(tmp_path: Path) -> None:
    root = write_split_layout(tmp_path / "set", _splits(), "v1")
    before = sorted(p.stat().st_mtime_ns for p in root.rglob("*.png"))
    late = tmp_path / ".set.partial-late"  # a second writer that started before the first ended
    (late / "train").mkdir(parents=True)
    layout._move_into_place(late, root, "v1")
    assert is_complete(root, "v1")
    assert sorted(p.stat().st_mtime_ns for p in root.rglob("*.png")) == before
    assert not (root / "train").samefile(late / "train")
