"""A folder of class sub-folders (such as TensorFlow's `flower_photos`), read lazily with
torchvision's ImageFolder and split into train and test by class, with a seed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Subset
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from labkit.config import data_root, shown_path
from labkit.data.cub_dataset import IMAGENET_MEAN, IMAGENET_STD, open_rgb
from labkit.data.folders import list_image_folder
from labkit.data.lab_data import LabData

PHOTO_SOURCE = "photo folder"


REPLACE_PHOTO = "replace or delete this file (the folder's other images are unaffected)"


def load_photo(path: str) -> Image.Image:
    """ImageFolder's loader: every mode as RGB, errors naming the file (`open_rgb`)."""
    return open_rgb(path, remedy=REPLACE_PHOTO)[0]


def photo_transform(resize: int, crop: int, train: bool) -> v2.Compose:
    """Resize the short side, crop (random with a flip for training, centre for testing), and
    normalise with ImageNet's statistics; PIL image in, float32 (3, crop, crop) out."""
    steps = [v2.PILToTensor(), v2.Resize(resize, antialias=True)]
    steps += [v2.RandomCrop(crop), v2.RandomHorizontalFlip()] if train else [v2.CenterCrop(crop)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


def split_by_class(
    labels: np.ndarray,
    test_fraction: float,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) positions: `test_fraction` of every class (at least one image, and
    at least one left for training) drawn with `seed`.

    Raises ValueError for a fraction outside (0, 1) or a class with fewer than two images
    (named by `class_names[label]` when given, e.g. its folder).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            name = class_names[c] if class_names is not None else f"class {c}"
            raise ValueError(
                f"{name} has {len(members)} image: a split needs at least two per class; add "
                "images or remove the class"
            )
        count = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        test.append(rng.choice(members, size=count, replace=False))
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test_idx), test_idx


def load_photo_folder(
    folder: str | os.PathLike,
    *,
    resize: int,
    crop: int,
    test_fraction: float = 0.1,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> LabData:
    """`folder/<class>/<image>` split by class into train and test; prints one line.

    Args:
        folder: a path, or a folder name under the data folder (e.g. "flower_photos").
        resize, crop: see `photo_transform`.
        test_fraction, seed: the split (`split_by_class`).
    Raises:
        FileNotFoundError, ValueError: a missing folder, no class folders, a class folder
            without images or with a single one; each message names the folder.
    """
    path = Path(folder)
    if not path.is_absolute() and not path.exists():
        path = data_root(root) / path
    list_image_folder(path)  # errors that name the folder, before ImageFolder's own
    train_set = ImageFolder(path, photo_transform(resize, crop, True), loader=load_photo)
    test_set = ImageFolder(path, photo_transform(resize, crop, False), loader=load_photo)
    labels = np.asarray(train_set.targets)
    folders = [str(path / name) for name in train_set.classes]
    train_idx, test_idx = split_by_class(labels, test_fraction, seed, folders)
    data = LabData(
        Subset(train_set, train_idx.tolist()),
        Subset(test_set, test_idx.tolist()),
        tuple(train_set.classes),
        PHOTO_SOURCE,
        path,
    )
    if verbose:
        print(
            f"data: {PHOTO_SOURCE} at {shown_path(path)} - train {len(train_idx)}, test "
            f"{len(test_idx)} images ({test_fraction:.0%} of each class, seed {seed}), "
            f"{data.num_classes} classes, resized to {resize}px, {crop}px crops"
        )
    return data
