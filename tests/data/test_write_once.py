"""Folders written once: an interrupted write leaves nothing, a new version replaces an old one,
a write another process finished meanwhile is kept (exercised through the MNIST layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import labkit.data.mnist as mnist
import labkit.data.write_once as once
from labkit.data.mnist import write_split_layout
from labkit.data.write_once import MARKER, is_complete


def _splits(n: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    labels = np.tile(np.arange(3), n)
    images = np.zeros((len(labels), 6, 6), dtype=np.uint8)
    return {"train": (images, labels), "test": (images[:3], labels[:3])}


def test_interrupted_write_leaves_no_folder_and_is_redone(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = mnist._write_split

    def dies_on_test_split(root: Path, split: str, *args) -> None:
        calls.append(split)
        if split == "test":
            raise KeyboardInterrupt  # the kernel interrupted halfway
        real(root, split, *args)

    monkeypatch.setattr(mnist, "_write_split", dies_on_test_split)
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


def test_a_write_finished_meanwhile_by_another_process_is_kept(tmp_path: Path) -> None:
    root = write_split_layout(tmp_path / "set", _splits(), "v1")
    before = sorted(p.stat().st_mtime_ns for p in root.rglob("*.png"))
    late = tmp_path / ".set.partial-late"  # a second writer that started before the first ended
    (late / "train").mkdir(parents=True)
    once._move_into_place(late, root, "v1")
    assert is_complete(root, "v1")
    assert sorted(p.stat().st_mtime_ns for p in root.rglob("*.png")) == before
    assert not (root / "train").samefile(late / "train")
