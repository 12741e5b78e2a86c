"""The handout's MNIST subset (200/class train, 100/class test) built from the four IDX files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from labkit.data.layout import is_complete, sample_per_class, write_split_layout

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
