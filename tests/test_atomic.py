"""Atomic writes: the file holds the old bytes or the new ones, never a part; a folder written
once is absent or complete (exercised through the MNIST layout): an interrupted write leaves
nothing, a new version replaces an old one, a write another process finished meanwhile is kept."""

import os
from pathlib import Path

import numpy as np
import pytest

import labkit.atomic as atomic
import labkit.data.mnist as mnist
from labkit.atomic import MARKER, is_complete, write_atomic, write_bytes_atomic, write_text_atomic
from labkit.data.mnist import write_split_layout


def test_writes_text_and_bytes_and_creates_the_folder(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "a" / "b.csv", "x,y\r\n1,2\n")
    assert target.read_bytes() == b"x,y\r\n1,2\n"  # newlines as given
    assert write_bytes_atomic(target, b"\x00\x01").read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["b.csv"]


def test_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_text_atomic(tmp_path / "gradebook.csv", "old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "last.pt", "old")

    def half(f) -> None:
        f.write(b"new but ")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_atomic(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_new_file_gets_the_usual_mode_not_mkstemps(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "gradebook.csv", "student\n")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


# folders written once


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
    atomic._move_into_place(late, root, "v1")
    assert is_complete(root, "v1")
    assert sorted(p.stat().st_mtime_ns for p in root.rglob("*.png")) == before
    assert not (root / "train").samefile(late / "train")
