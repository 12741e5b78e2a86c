"""Loading the digits by name: which data set, the one-line message, caps, sizes, loaders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit.config import shown_path
from labkit.data.digits import write_builtin_digits
from labkit.data.layout import write_split_layout
from labkit.data.loaders import BUILTIN_SOURCE, MNIST_SOURCE, load_digits_data, make_loaders


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the built-in digits, written once per session (see test_digits.py)."""
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
    assert f"no MNIST subset at {shown_path(base / 'mnist')}" in line
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
