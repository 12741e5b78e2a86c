"""The MNIST subset from IDX files: parsing, per-class sampling, seeds, damaged or missing files;
checking a split's CSV against its files."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data.mnist import (
    IDX_FILES,
    make_mnist_subset,
    read_idx,
    sample_per_class,
    validate_split_csv,
)

TRAIN_PER_DIGIT, TEST_PER_DIGIT = 12, 8  # images per digit in the synthetic IDX files


def _idx_bytes(array: np.ndarray) -> bytes:
    """`array` (uint8) in IDX format: magic 0x0000080<ndim>, big-endian sizes, then the data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _synthetic_mnist(per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) whose first pixel row holds the image's running number, and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_digit))
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(len(labels)) % 256
    images[:, 1:, 10:18] = labels[:, None, None] * 25  # a bar whose brightness is the digit
    return images, labels


def _write_idx_dir(folder: Path, gz: bool = False) -> Path:
    """The four MNIST files for a small synthetic MNIST under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = _synthetic_mnist(TRAIN_PER_DIGIT, 1), _synthetic_mnist(TEST_PER_DIGIT, 2)
    arrays = {
        "train_images": train[0],
        "train_labels": train[1],
        "test_images": test[0],
        "test_labels": test[1],
    }
    for role, array in arrays.items():
        data = _idx_bytes(array)
        path = folder / (IDX_FILES[role] + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return folder


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain synthetic IDX files, shared by this module."""
    return _write_idx_dir(tmp_path_factory.mktemp("idx"))


def _counts(root: Path, split: str) -> list[int]:
    return [len(list((root / split / str(d)).glob("*.png"))) for d in range(10)]


def _chosen(root: Path, split: str) -> list[int]:
    """The running numbers (first pixel) of the images written for `split`, in id order."""
    with open(root / f"{split}.csv", newline="") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    return [int(np.asarray(Image.open(root / n))[0, 0, 0]) for n in names]


def test_read_idx_round_trip(idx_dir: Path) -> None:
    images = read_idx(idx_dir / IDX_FILES["train_images"], 3)
    labels = read_idx(idx_dir / IDX_FILES["train_labels"], 1)
    expected_images, expected_labels = _synthetic_mnist(TRAIN_PER_DIGIT, 1)
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


@pytest.mark.parametrize("gz", [False, True])
def test_subset_counts_layout_and_labels(tmp_path: Path, gz: bool) -> None:
    src = _write_idx_dir(tmp_path / "raw", gz=gz)
    root = make_mnist_subset(src, tmp_path / "mnist", train_per_class=5, test_per_class=3)
    assert _counts(root, "train") == [5] * 10 and _counts(root, "test") == [3] * 10
    _, labels = _synthetic_mnist(TRAIN_PER_DIGIT, 1)
    with open(root / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(range(50))
    for row, number in zip(rows, _chosen(root, "train"), strict=True):
        assert labels[number] == int(row["class"])  # the image really is of that digit
        image = np.asarray(Image.open(root / row["name"]))
        assert image.shape == (28, 28, 3) and image[5, 12, 0] == 25 * int(row["class"])
    assert _chosen(root, "train") == sorted(_chosen(root, "train"))  # MNIST's order kept


def test_default_sizes_are_the_handouts(tmp_path: Path) -> None:
    src = _write_idx_dir(tmp_path / "raw")
    with pytest.raises(ValueError, match=re.escape(str(src)) + ".*only 12 images"):
        make_mnist_subset(src, tmp_path / "mnist")  # 200/100 per class by default


def test_same_seed_same_images_other_seed_others(idx_dir: Path, tmp_path: Path) -> None:
    runs = [
        make_mnist_subset(idx_dir, tmp_path / name, train_per_class=4, test_per_class=3, seed=s)
        for name, s in (("a", 0), ("b", 0), ("c", 1))
    ]
    a, b, c = ([_chosen(r, "train"), _chosen(r, "test")] for r in runs)
    assert a == b
    assert a[0] != c[0] and a[1] != c[1]
    assert (runs[0] / "train.csv").read_bytes() == (runs[1] / "train.csv").read_bytes()


def test_complete_subset_is_not_rewritten(idx_dir: Path, tmp_path: Path) -> None:
    root = make_mnist_subset(idx_dir, tmp_path / "mnist", train_per_class=2, test_per_class=2)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    make_mnist_subset(idx_dir, root, train_per_class=2, test_per_class=2)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    make_mnist_subset(idx_dir, root, train_per_class=3, test_per_class=2)  # other settings
    assert _counts(root, "train") == [3] * 10


def test_hand_copied_subset_is_kept_unless_overwrite(idx_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "mnist"
    (root / "train" / "0").mkdir(parents=True)
    with pytest.raises(FileExistsError, match=re.escape(str(root)) + ".*overwrite"):
        make_mnist_subset(idx_dir, root, train_per_class=2, test_per_class=2)
    assert (root / "train" / "0").is_dir()
    make_mnist_subset(idx_dir, root, train_per_class=2, test_per_class=2, overwrite=True)
    assert _counts(root, "test") == [2] * 10


def test_dotted_file_names_are_found(idx_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for name in IDX_FILES.values():  # the `train-images.idx3-ubyte` spelling
        (src / name.replace("-idx", ".idx")).write_bytes((idx_dir / name).read_bytes())
    root = make_mnist_subset(src, tmp_path / "mnist", train_per_class=1, test_per_class=1)
    assert _counts(root, "train") == [1] * 10


def test_missing_file_names_all_four_and_a_source(idx_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    (src / IDX_FILES["train_images"]).write_bytes(
        (idx_dir / IDX_FILES["train_images"]).read_bytes()
    )
    with pytest.raises(FileNotFoundError) as info:
        make_mnist_subset(src, tmp_path / "mnist")
    message = str(info.value)
    assert "train-labels-idx1-ubyte" in message and str(src) in message
    assert all(name in message for name in IDX_FILES.values())
    assert "download" in message or "https://" in message
    assert not (tmp_path / "mnist").exists()


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda data: b"\x00\x00\x08\x01" + data[4:], "magic number 2049, expected 2051"),
        (lambda data: data[:-100], "truncated"),
        (lambda data: data[:6], "truncated"),
        (lambda data: b"", "magic number None"),
    ],
)
def test_damaged_idx_raises_naming_the_file(idx_dir: Path, tmp_path: Path, damage, match) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for name in IDX_FILES.values():
        (src / name).write_bytes((idx_dir / name).read_bytes())
    bad = src / IDX_FILES["train_images"]
    bad.write_bytes(damage(bad.read_bytes()))
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ".*" + match):
        make_mnist_subset(src, tmp_path / "mnist", train_per_class=1, test_per_class=1)


def test_corrupt_gzip_raises_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / (IDX_FILES["test_labels"] + ".gz")
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        read_idx(bad, 1)


def test_command_line_script(idx_dir: Path, tmp_path: Path, capsys) -> None:
    script = Path(__file__).resolve().parents[2] / "data_prep" / "make_mnist_subset.py"
    spec = importlib.util.spec_from_file_location("make_mnist_subset", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "mnist"
    args = [str(idx_dir), str(out), "--train-per-class", "2", "--test-per-class", "1"]
    assert module.main(args) == 0
    assert _counts(out, "train") == [2] * 10 and str(out) in capsys.readouterr().out
    assert module.main([str(tmp_path / "nowhere"), str(tmp_path / "other")]) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_sample_per_class_is_balanced_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [5, 6, 7, 8])
    chosen, rest = sample_per_class(labels, 3, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [3, 3, 3, 3]
    assert sorted(np.concatenate([chosen, rest]).tolist()) == list(range(len(labels)))
    assert np.array_equal(chosen, sample_per_class(labels, 3, seed=0)[0])
    assert not np.array_equal(chosen, sample_per_class(labels, 3, seed=1)[0])


def test_validate_absent_csv_is_fine(tmp_path: Path) -> None:
    assert validate_split_csv(tmp_path, "train", "remedy") == 0


def test_unreadable_csv_names_it(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=rf"cannot read {re.escape(str(tmp_path / 'train.csv'))}"):
        validate_split_csv(tmp_path, "train", "rebuild it")
