"""The digits of labs 02 and 03 by name: the MNIST subset when present, else the built-in digits."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from labkit.config import data_root, shown_path
from labkit.data.builtin import BUILTIN_WRITERS
from labkit.data.folders import REBUILD_MNIST, read_image_folder
from labkit.data.lab_data import LabData
from labkit.data.layout import validate_split_csv

MNIST_SOURCE = "MNIST subset"
BUILTIN_SOURCE = "built-in digits"


DigitsData = LabData  # the digits are a LabData like every data set by name


def digits_augmentation(image_size: int) -> v2.RandomCrop:
    """The handout's training augmentation for digits: a random crop with padding, no flips.

    Padding is image_size // 8 (RandomCrop(32, padding=4) at 32 px); a mirrored digit is another
    symbol, so there is no horizontal flip.
    """
    return v2.RandomCrop(image_size, padding=image_size // 8)


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
        folder = BUILTIN_WRITERS["digits"](base / "builtin" / "digits")
        source, detail = BUILTIN_SOURCE, f"(scikit-learn scans; {why_not})"
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
    """(train_loader, test_loader): training shuffled by a generator seeded with `seed`.

    The random crops draw from torch's global generator in the notebook's process (seed it
    with `labkit.seed_everything`) and from per-worker seeds derived from `seed` when
    `num_workers > 0`.
    """
    workers = {"num_workers": num_workers, "persistent_workers": num_workers > 0}
    train_loader = DataLoader(
        data.train,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )
    test_loader = DataLoader(data.test, batch_size=eval_batch_size, shuffle=False, **workers)
    return train_loader, test_loader
