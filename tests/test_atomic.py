"""Atomic writes: the file holds the old bytes or the new ones, never a part."""

import os
from pathlib import Path

import pytest

from labkit.atomic import write_atomic, write_bytes_atomic, write_text_atomic


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
