"""The digits of labs 02 and 03 by name: the MNIST subset when present, else the built-in digits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from labkit.config import Profile, data_root
from labkit.data.digits import write_builtin_digits
from labkit.data.folders import REBUILD_MNIST, read_image_folder
from labkit.data.layout import validate_split_csv
from labkit.data.tensor_dataset import TensorImageDataset

MNIST_SOURCE = "MNIST subset"
BUILTIN_SOURCE = "built-in digits"


@dataclass(frozen=True)
class DigitsData:
    """The train and test splits of the digits, with where they came from."""

    train: TensorImageDataset  # augmented (random crop with padding)
    test: TensorImageDataset  # not augmented
    class_names: tuple[str, ...]
    source: str  # MNIST_SOURCE or BUILTIN_SOURCE
    root: Path  # the folder holding train/ and test/

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)


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
        return None, f"no MNIST subset at {mnist}"
    missing = [split for split in ("train", "test") if not (mnist / split).is_dir()]
    if missing:
        return None, f"MNIST subset at {mnist} incomplete: no {' or '.join(missing)}/ folder"
    return mnist, ""


def load_digits_data(
    profile: Profile, root: str | os.PathLike | None = None, verbose: bool = True
) -> DigitsData:
    """The digits for labs 02 and 03, sized and capped by `profile`; prints one line saying which.

    Uses the MNIST subset at `data_root(root)/mnist` when it holds train/ and test/, else
    writes (once) and uses the built-in digits at `data_root(root)/builtin/digits`.
    Used in: 02_densenet_resnext, 03_facenet_knn.
    """
    base = data_root(root)
    mnist, why_not = find_mnist_subset(base)
    if mnist is not None:
        folder, source, remedy, detail = mnist, MNIST_SOURCE, REBUILD_MNIST, f"at {mnist}"
    else:
        folder = write_builtin_digits(base / "builtin" / "digits")
        source, detail = BUILTIN_SOURCE, f"at {folder} (scikit-learn scans; {why_not})"
        remedy = f"delete {folder} and it is written again from scikit-learn's digits"
    caps = {"train": profile.train_per_class, "test": profile.test_per_class}
    splits = {}
    for split, per_class in caps.items():
        validate_split_csv(folder, split, remedy)
        splits[split] = read_image_folder(folder / split, profile.image_size, per_class, remedy)
    train, test = splits["train"], splits["test"]
    if train.class_names != test.class_names:
        raise ValueError(
            f"{folder}/train and {folder}/test have different class folders "
            f"({list(train.class_names)} vs {list(test.class_names)}); {remedy}"
        )
    data = DigitsData(
        train=train.with_transform(digits_augmentation(profile.image_size)),
        test=test,
        class_names=train.class_names,
        source=source,
        root=folder,
    )
    if verbose:
        print(_summary(data, detail, profile))
    return data


def _summary(data: DigitsData, detail: str, profile: Profile) -> str:
    """The one line `load_digits_data` prints."""
    capped = ""
    if (profile.train_per_class, profile.test_per_class) != (None, None):
        caps = "/".join(
            "all" if c is None else str(c)
            for c in (profile.train_per_class, profile.test_per_class)
        )
        capped = f" (at most {caps} per class, profile {profile.name})"
    return (
        f"data: {data.source} {detail} - train {len(data.train)}, test {len(data.test)} images"
        f"{capped}, {data.num_classes} classes, {profile.image_size}px"
    )


def make_loaders(
    data: DigitsData, profile: Profile, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader): training shuffled by a generator seeded with `seed`.

    Batch sizes and workers come from `profile`; the random crops draw from torch's global
    generator in the notebook's process (seed it with `labkit.seed_everything`) and from
    per-worker seeds derived from `seed` when `profile.num_workers > 0`.
    """
    workers = {"num_workers": profile.num_workers, "persistent_workers": profile.num_workers > 0}
    train_loader = DataLoader(
        data.train,
        batch_size=profile.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )
    test_loader = DataLoader(
        data.test, batch_size=profile.eval_batch_size, shuffle=False, **workers
    )
    return train_loader, test_loader
