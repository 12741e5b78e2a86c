"""The digits of labs 02 and 03: by name (the handout's MNIST subset when present, else the
built-in digits), the built-in digits themselves (scikit-learn's 1,797 bundled 8x8 scans written
in the MNIST subset's layout), and their loaders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from labkit.atomic import is_complete
from labkit.config import data_root, shown_path
from labkit.data.datasets import LabData
from labkit.data.images import REBUILD_MNIST, read_image_folder
from labkit.data.mnist import LAYOUT_NAMES, sample_per_class, validate_split_csv, write_split_layout
from labkit.data.transforms import digits_augmentation
from labkit.training.loaders import seeded_loader

MNIST_SOURCE = "MNIST subset"
BUILTIN_SOURCE = "built-in digits"


DigitsData = LabData  # the digits are a LabData like every data set by name


def find_mnist_subset(base: Path) -> tuple[Path | None, str]:
    """`base/mnist` if it holds train/ and test/ folders, and a note on why it was not used."""
    mnist = base / "mnist"
    if not mnist.exists():
        return None, f"no MNIST subset at {shown_path(mnist)}"
    missing = [split for split in ("train", "test") if not (mnist / split).is_dir()]
    if missing:
        where = shown_path(mnist)
        return None, f"MNIST subset at {where} incomplete: no {' or '.join(missing)}/ folder"
    return mnist, ""


def load_digits_data(
    *,
    image_size: int = 32,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> DigitsData:
    """The digits for labs 02 and 03 at `image_size` px; prints one line saying which.

    Uses the MNIST subset at `data_root(root)/mnist` when it holds train/ and test/, else
    writes (once) and uses the built-in digits at `data_root(root)/builtin/digits`.

    Args:
        image_size: side of the square images, in pixels.
        train_per_class, test_per_class: keep the first this many images of each class
            (None keeps all).
    Raises:
        ValueError, FileNotFoundError: a broken data folder; the message says how to fix it.
    Used in: 02_densenet_resnext, 03_facenet_knn.
    """
    base = data_root(root)
    mnist, why_not = find_mnist_subset(base)
    if mnist is not None:
        folder, source, remedy = mnist, MNIST_SOURCE, REBUILD_MNIST
        detail = f"at {shown_path(mnist)}"
    else:
        folder = write_builtin_digits(base / "builtin" / "digits")
        source = BUILTIN_SOURCE
        detail = f"(scikit-learn scans; {why_not}: `labkit fetch mnist` brings the real subset)"
        remedy = f"delete {folder} and it is written again from scikit-learn's digits"
    caps = {"train": train_per_class, "test": test_per_class}
    splits = {}
    for split, per_class in caps.items():
        validate_split_csv(folder, split, remedy)
        splits[split] = read_image_folder(folder / split, image_size, per_class, remedy)
    train, test = splits["train"], splits["test"]
    if train.class_names != test.class_names:
        raise ValueError(
            f"{folder}/train and {folder}/test have different class folders "
            f"({list(train.class_names)} vs {list(test.class_names)}); {remedy}"
        )
    data = DigitsData(
        train=train.with_transform(digits_augmentation(image_size)),
        test=test,
        class_names=train.class_names,
        source=source,
        root=folder,
    )
    if verbose:
        print(_summary(data, detail, train_per_class, test_per_class, image_size))
    return data


def _summary(
    data: DigitsData,
    detail: str,
    train_per_class: int | None,
    test_per_class: int | None,
    image_size: int,
) -> str:
    """The one line `load_digits_data` prints."""
    capped = ""
    if (train_per_class, test_per_class) != (None, None):
        caps = "/".join("all" if c is None else str(c) for c in (train_per_class, test_per_class))
        capped = f" (at most {caps} per class)"
    return (
        f"data: {data.source} {detail} - train {len(data.train)}, test {len(data.test)} images"
        f"{capped}, {data.num_classes} classes, {image_size}px"
    )


def make_loaders(
    data: DigitsData,
    *,
    batch_size: int = 64,
    eval_batch_size: int = 256,
    num_workers: int = 0,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader): training shuffled by a generator seeded with `seed`, the
    test split in order (see `labkit.training.loaders.seeded_loader`).

    The random crops draw from torch's global generator in the notebook's process (seed it
    with `labkit.seed_everything`) and from per-worker seeds derived from `seed` when
    `num_workers > 0`.
    """
    workers = {"seed": seed, "num_workers": num_workers}
    train_loader = seeded_loader(data.train, batch_size, shuffle=True, **workers)
    test_loader = seeded_loader(data.test, eval_batch_size, shuffle=False, **workers)
    return train_loader, test_loader


BUILTIN_DIGITS_VERSION = "labkit built-in digits v1 (train 100/class, seed 0, 32px, margin 4)"
TRAIN_PER_CLASS = 100  # the rest (797 scans) is the test split
SPLIT_SEED = 0
IMAGE_SIZE = 32  # the handout's CIFAR-style input size
MARGIN = 4  # black border around the digit, like MNIST's (20x20 box in 28x28)


def upscale_scan(scan: np.ndarray, size: int = IMAGE_SIZE, margin: int = MARGIN) -> np.ndarray:
    """An 8x8 scan (values 0..16, ink high) as a smooth uint8 `size`x`size` image, white on black.

    The scan fills its 8x8 box, so it is resized to `size - 2 * margin` and centred on black,
    as MNIST centres its 20x20 digit box in 28x28.
    """
    inner = size - 2 * margin
    image = Image.fromarray(scan.astype(np.float32) * (255.0 / 16.0))  # mode "F"
    big = np.asarray(image.resize((inner, inner), Image.Resampling.BICUBIC))
    out = np.zeros((size, size), dtype=np.uint8)
    out[margin : margin + inner, margin : margin + inner] = np.clip(np.rint(big), 0, 255)
    return out  # (size, size)


def write_builtin_digits(root: Path) -> Path:
    """Write the built-in digits under `root` once (train 100/class, test 797); return `root`.

    Layout: `root/{train,test}/<digit>/<id>.png` (32x32 RGB) and `root/{train,test}.csv` with
    columns `id,name,class`. Deterministic; a complete folder is left untouched.
    Used in: 02_densenet_resnext, 03_facenet_knn (through `load_digits_data`).
    """
    root = Path(root)
    if is_complete(root, BUILTIN_DIGITS_VERSION):
        return root
    from sklearn.datasets import load_digits  # here: importing scikit-learn takes 1-2 s

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    images = np.stack([upscale_scan(scan) for scan in digits.images])  # (1797, 32, 32)
    train_idx, test_idx = sample_per_class(labels, TRAIN_PER_CLASS, SPLIT_SEED)
    splits = {
        "train": (images[train_idx], labels[train_idx]),
        "test": (images[test_idx], labels[test_idx]),
    }
    # a folder with only layout entries and no marker is an interrupted write: redo it
    redo = root.is_dir() and {p.name for p in root.iterdir()} <= set(LAYOUT_NAMES)
    return write_split_layout(root, splits, BUILTIN_DIGITS_VERSION, overwrite=redo)
