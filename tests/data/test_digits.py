"""The built-in digits: layout, balance, determinism, idempotence, interrupted writes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from labkit.data.digits import upscale_scan, write_builtin_digits
from labkit.data.layout import MARKER


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in digits, written once per test session (test_loaders.py shares them)."""
    return write_builtin_digits(tmp_path_factory.getbasetemp() / "shared" / "builtin" / "digits")


@pytest.fixture(scope="module")
def second_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second write into another folder; tests may damage it but must leave it complete."""
    return write_builtin_digits(tmp_path_factory.mktemp("second") / "digits")


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def _pngs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def test_layout_is_balanced_and_complete(digits_root: Path) -> None:
    for digit in range(10):
        assert len(list((digits_root / "train" / str(digit)).glob("*.png"))) == 100
    test_counts = [len(list((digits_root / "test" / str(d)).glob("*.png"))) for d in range(10)]
    assert sum(test_counts) == 797
    assert test_counts == list(np.bincount(load_digits().target) - 100)
    assert (digits_root / MARKER).is_file()


def test_csv_rows_match_files(digits_root: Path) -> None:
    for split, n in (("train", 1000), ("test", 797)):
        with open(digits_root / f"{split}.csv") as f:
            assert f.readline().strip() == "id,name,class"
        rows = _rows(digits_root / f"{split}.csv")
        assert [int(r["id"]) for r in rows] == list(range(n))
        assert {r["name"] for r in rows} == {
            p.relative_to(digits_root).as_posix() for p in (digits_root / split).rglob("*.png")
        }
        for r in rows:
            assert re.fullmatch(rf"{split}/(\d)/\d{{5}}\.png", r["name"])
            assert r["name"].split("/")[1] == r["class"]


def test_images_are_32px_rgb_grey_white_on_black(digits_root: Path) -> None:
    path = next((digits_root / "train" / "0").glob("*.png"))
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (32, 32)
        pixels = np.asarray(image)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels[:4].max() == 0 and pixels[-4:].max() == 0  # black margin, like MNIST
    assert pixels.max() > 200  # white ink


def test_upscale_keeps_the_scan() -> None:
    scan = load_digits().images[0]
    image = upscale_scan(scan)
    assert image.shape == (32, 32) and image.dtype == np.uint8
    # averaging the 24x24 digit box back to 8x8 gives the scan again (values 0..16 -> 0..255)
    pooled = image[4:28, 4:28].reshape(8, 3, 8, 3).mean(axis=(1, 3)) / 255 * 16
    assert np.abs(pooled - scan).mean() < 1.0


def _assert_identical(root: Path, other: Path) -> None:
    ours, theirs = _pngs(root), _pngs(other)
    assert [p.relative_to(root) for p in ours] == [p.relative_to(other) for p in theirs]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, theirs, strict=True))
    for name in ("train.csv", "test.csv", MARKER):
        assert (root / name).read_bytes() == (other / name).read_bytes()


def test_two_writes_are_byte_identical(digits_root: Path, second_root: Path) -> None:
    _assert_identical(digits_root, second_root)


def test_second_call_does_not_rewrite(digits_root: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in digits_root.rglob("*")}
    assert write_builtin_digits(digits_root) == digits_root
    assert {p: p.stat().st_mtime_ns for p in digits_root.rglob("*")} == before
    assert [p.name for p in digits_root.parent.iterdir()] == ["digits"]  # no temporary left


def test_interrupted_write_is_redone(digits_root: Path, second_root: Path) -> None:
    lost = next((second_root / "test" / "7").glob("*.png"))
    lost.unlink()
    (second_root / MARKER).unlink()  # as if the write stopped before the marker
    write_builtin_digits(second_root)
    assert lost.is_file()
    _assert_identical(digits_root, second_root)


def test_foreign_folder_is_not_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(str(root))):
        write_builtin_digits(root)
    assert (root / "notes.txt").read_text() == "mine"
