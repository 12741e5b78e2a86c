"""The handout's MNIST subset (200/class train, 100/class test) built from the four IDX files,
and its layout, which the built-in digits share: `<root>/<split>/<class>/<id>.png` plus
`<root>/<split>.csv` (columns id, name, class), written once (`labkit.atomic.write_once`)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from labkit.atomic import MARKER, is_complete, write_once

IDX_FILES = {  # role -> the file name MNIST is distributed under (each plain or .gz)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {1: 2049, 3: 2051}  # number of dimensions -> magic number of a uint8 IDX file
MNIST_SOURCES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/ (the mirror torchvision uses) "
    "or torchvision.datasets.MNIST(root, download=True), which leaves them in root/MNIST/raw"
)
_REFETCH = f"download it again from {MNIST_SOURCES}"
CSV_COLUMNS = ("id", "name", "class")
LAYOUT_NAMES = ("train", "test", "train.csv", "test.csv", MARKER)  # all a layout folder holds


def write_split_layout(
    root: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    version: str,
    overwrite: bool = False,
) -> Path:
    """Write `{split: (images, labels)}` as PNGs and CSVs under `root`, unless already complete.

    Args:
        root: the folder to create (its parent is created if needed).
        splits: per split, uint8 images (N, H, W) grey or (N, H, W, 3) RGB, and labels (N,).
        version: the marker text; a folder whose marker matches is left untouched.
        overwrite: replace a non-empty `root` that labkit did not write (no marker).
    Returns:
        `root`.
    """

    def write(folder: Path) -> None:
        for split, (images, labels) in splits.items():
            _write_split(folder, split, images, labels)

    remedy = "delete it, choose another output folder, or pass overwrite=True (--overwrite)"
    return write_once(root, version, write, overwrite, remedy)


def _write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write one split's PNGs (sorted ids, classes interleaved as given) and its CSV."""
    if images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(f"split {split!r}: need uint8 images and one label per image")
    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"{split}/{int(label)}/{i:05d}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
        Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="PNG")
        rows.append((i, name, int(label)))
    with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def sample_per_class(
    labels: np.ndarray, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of `per_class` items per class drawn with `seed`, and the sorted rest."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
        for c in np.unique(labels)
    ]
    chosen_idx = np.sort(np.concatenate(chosen))
    return chosen_idx, np.setdiff1d(np.arange(len(labels)), chosen_idx)


def validate_split_csv(root: Path, split: str, remedy: str) -> int:
    """Check `<root>/<split>.csv` against the files; return its row count (0 when it is absent).

    Raises ValueError naming the CSV for missing columns or a class that disagrees with the
    folder, and FileNotFoundError naming the CSV line and the file when an image is missing.
    """
    csv_path = Path(root) / f"{split}.csv"
    if not csv_path.is_file():
        return 0
    try:
        table = pd.read_csv(csv_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {csv_path}: {err}; {remedy}") from err
    missing_columns = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing_columns:
        raise ValueError(
            f"{csv_path} lacks columns {missing_columns} (expected {list(CSV_COLUMNS)}); {remedy}"
        )
    for row, name, label in zip(table.index, table["name"], table["class"], strict=True):
        path = Path(root) / str(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"{csv_path} line {row + 2} names {name}, but {path} is missing; {remedy}"
            )
        if path.parent.name != str(label):
            raise ValueError(
                f"{csv_path} line {row + 2}: class {label} but {name} lies in folder "
                f"{path.parent.name!r}; {remedy}"
            )
    return len(table)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """A uint8 IDX file (plain or .gz) with `ndim` dimensions as an array; errors name the file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"cannot read IDX file {path}: {err}; {_REFETCH}") from err
    header = 4 + 4 * ndim
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != IDX_MAGIC[ndim]:
        raise ValueError(
            f"{path} is not a uint8 IDX file with {ndim} dimension(s): magic number {magic}, "
            f"expected {IDX_MAGIC[ndim]}; {_REFETCH}"
        )
    if len(data) < header:
        raise ValueError(f"{path} is truncated (incomplete header); {_REFETCH}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        problem = "is truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path} {problem}: {len(data)} bytes for shape {shape}, expected {expected}; "
            f"{_REFETCH}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_file(idx_dir: Path, name: str) -> Path:
    """MNIST file `name` in `idx_dir`: plain, .gz, or spelt `train-images.idx3-ubyte`."""
    idx_dir = Path(idx_dir)
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (idx_dir / candidate).is_file():
            return idx_dir / candidate
    raise FileNotFoundError(
        f"MNIST file {name} (or {name}.gz) not found in {idx_dir}; that folder needs the four "
        f"files {', '.join(IDX_FILES.values())} (plain or .gz); get them from {MNIST_SOURCES}"
    )


def load_idx_split(idx_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's "train" or "test" split from `idx_dir`: uint8 images (N, 28, 28), int64 labels."""
    images_path = find_idx_file(idx_dir, IDX_FILES[f"{split}_images"])
    labels_path = find_idx_file(idx_dir, IDX_FILES[f"{split}_labels"])
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels; "
            f"{_REFETCH}"
        )
    return images, labels.astype(np.int64)


def make_mnist_subset(
    idx_dir: Path,
    out_root: Path,
    train_per_class: int = 200,
    test_per_class: int = 100,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write the handout's MNIST subset from the IDX files in `idx_dir` to `out_root`; return it.

    Draws `train_per_class` training and `test_per_class` test images per class with `seed`
    (2000/1000 by default) and writes `out_root/{train,test}/<digit>/<id>.png` (28x28 RGB)
    with `out_root/{train,test}.csv`. A complete subset with the same settings is left as is.
    """
    out_root = Path(out_root)
    version = (
        f"labkit MNIST subset v1 (train {train_per_class}/class, test {test_per_class}/class, "
        f"seed {seed})"
    )
    if is_complete(out_root, version):
        return out_root
    rng_seeds = {"train": seed, "test": seed + 1}  # independent draws for the two splits
    per_class = {"train": train_per_class, "test": test_per_class}
    splits = {}
    for split in ("train", "test"):
        images, labels = load_idx_split(idx_dir, split)
        counts = np.bincount(labels, minlength=10)
        if counts.min() < per_class[split]:
            raise ValueError(
                f"MNIST {split} files in {idx_dir} hold only {counts.min()} images of digit "
                f"{counts.argmin()}; ask for at most that many per class"
            )
        chosen, _ = sample_per_class(labels, per_class[split], rng_seeds[split])
        splits[split] = (images[chosen], labels[chosen])
    return write_split_layout(out_root, splits, version, overwrite=overwrite)
