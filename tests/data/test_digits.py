"""The digits: the built-in set (layout, balance, determinism, idempotence, interrupted writes)
and loading them by name (which data set, the one-line message, caps, sizes, loaders)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from labkit.atomic import MARKER
from labkit.config import shown_path
from labkit.data.digits import (
    BUILTIN_SOURCE,
    MNIST_SOURCE,
    load_digits_data,
    make_loaders,
    upscale_scan,
    write_builtin_digits,
)
from labkit.data.mnist import write_split_layout


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in digits, written once per test session (`base` below shares them)."""
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


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the built-in digits, written once per session (as `digits_root`)."""
    base = tmp_path_factory.getbasetemp() / "shared"
    write_builtin_digits(base / "builtin" / "digits")
    return base


def _fake_mnist(base: Path, train_per_class: int = 3, test_per_class: int = 2) -> Path:
    """A tiny 28x28 MNIST-like subset at `base/mnist` (image brightness = 20 * digit + 10)."""
    splits = {}
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(10), n)
        images = np.broadcast_to(
            (20 * labels + 10).astype(np.uint8)[:, None, None], (10 * n, 28, 28)
        )
        splits[split] = (np.ascontiguousarray(images), labels)
    return write_split_layout(base / "mnist", splits, "test")


def test_builtin_digits_when_no_mnist(base: Path, capsys) -> None:
    data = load_digits_data(root=base)
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert line.startswith("data: built-in digits (scikit-learn scans; no MNIST subset at ")
    assert f"no MNIST subset at {shown_path(base / 'mnist')}: `labkit fetch mnist`" in line
    assert "train 1000, test 797 images" in line and "10 classes" in line
    assert data.source == BUILTIN_SOURCE and data.root == base / "builtin" / "digits"
    assert data.class_names == tuple("0123456789")
    assert data.train.images.shape == (1000, 3, 32, 32) and data.test.images.shape[0] == 797
    assert torch.bincount(data.train.labels).tolist() == [100] * 10
    assert data.train.transform is not None and data.test.transform is None
    assert len(data.train.paths) == 1000 and data.train.paths[0].is_file()


def test_caps_and_image_size(base: Path, capsys) -> None:
    caps = {"train_per_class": 3, "test_per_class": None, "image_size": 16}
    data = load_digits_data(**caps, root=base)
    assert "train 30, test 797 images (at most 3/all per class), 10 classes, 16px" in (
        capsys.readouterr().out
    )
    assert data.train.images.shape == (30, 3, 16, 16)
    for c in range(10):  # the first 3 files of each class, in file order
        first = sorted((base / "builtin" / "digits" / "train" / str(c)).glob("*.png"))[:3]
        assert list(data.train.paths[3 * c : 3 * c + 3]) == first
    assert load_digits_data(**caps, root=base, verbose=False).train.paths == data.train.paths
    assert not capsys.readouterr().out  # verbose=False prints nothing


def test_mnist_subset_is_preferred(tmp_path: Path, capsys) -> None:
    mnist = _fake_mnist(tmp_path)
    data = load_digits_data(image_size=16, train_per_class=10, test_per_class=10, root=tmp_path)
    line = capsys.readouterr().out
    assert line == (
        f"data: MNIST subset at {shown_path(mnist)} - train 30, test 20 images "
        "(at most 10/10 per class), 10 classes, 16px\n"
    )
    assert data.source == MNIST_SOURCE and data.root == mnist
    assert not (tmp_path / "builtin").exists()
    assert data.train.images.shape == (30, 3, 16, 16)  # 28 px resized once, at decode time
    expected = (20 * data.train.labels + 10).to(torch.uint8)
    assert torch.equal(data.train.images[:, 0, 8, 8], expected)


def test_incomplete_mnist_falls_back_and_says_why(base: Path, tmp_path: Path, capsys) -> None:
    shutil.copytree(base / "builtin", tmp_path / "builtin")
    (tmp_path / "mnist" / "train").mkdir(parents=True)
    data = load_digits_data(root=tmp_path)
    assert data.source == BUILTIN_SOURCE
    expected = f"MNIST subset at {shown_path(tmp_path / 'mnist')} incomplete: no test/"
    assert expected in capsys.readouterr().out


def test_csv_row_with_missing_file(tmp_path: Path) -> None:
    mnist = _fake_mnist(tmp_path)
    lost = next((mnist / "test" / "4").glob("*.png"))
    lost.unlink()
    with pytest.raises(FileNotFoundError, match=rf"test\.csv line \d+ .*{re.escape(str(lost))}"):
        load_digits_data(root=tmp_path, verbose=False)


def test_csv_class_disagreeing_with_folder(tmp_path: Path) -> None:
    mnist = _fake_mnist(tmp_path)
    csv_path = mnist / "train.csv"
    csv_path.write_text(csv_path.read_text().replace("train/1/00001.png,1", "train/1/00001.png,7"))
    with pytest.raises(ValueError, match=rf"{re.escape(str(csv_path))} line 3: class 7"):
        load_digits_data(root=tmp_path, verbose=False)


def test_csv_without_columns(tmp_path: Path) -> None:
    mnist = _fake_mnist(tmp_path)
    (mnist / "test.csv").write_text("file,label\na.png,1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(mnist / 'test.csv'))} lacks columns"):
        load_digits_data(root=tmp_path, verbose=False)


def test_corrupt_builtin_image_names_file(base: Path, tmp_path: Path) -> None:
    shutil.copytree(base / "builtin", tmp_path / "builtin")
    bad = sorted((tmp_path / "builtin" / "digits" / "train" / "5").glob("*.png"))[2]
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=rf"cannot decode image {re.escape(str(bad))}.*delete"):
        load_digits_data(root=tmp_path, verbose=False)


@pytest.mark.slow
def test_loaders_batches_and_seeded_order(base: Path) -> None:
    data = load_digits_data(
        image_size=16, train_per_class=20, test_per_class=20, root=base, verbose=False
    )
    sizes = {"batch_size": 8, "eval_batch_size": 50}

    def first_labels(seed: int) -> list[int]:
        train_loader, _ = make_loaders(data, **sizes, seed=seed)
        return [y for _, labels in train_loader for y in labels.tolist()][:40]

    assert first_labels(0) == first_labels(0) != first_labels(1)
    train_loader, test_loader = make_loaders(data, **sizes)
    images, labels = next(iter(train_loader))
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    test_labels = torch.cat([labels for _, labels in test_loader])
    assert torch.equal(test_labels, data.test.labels)  # unshuffled
    assert [len(labels) for _, labels in test_loader] == [50, 50, 50, 50]
