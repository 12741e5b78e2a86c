"""The datasets every loader returns: `LabData` (a lab's train and test splits, class names and
where they came from) and `TensorImageDataset` (images decoded once into one uint8 tensor), and
the seeded split by class they are carved with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from labkit.data.transforms import normalize


@dataclass(frozen=True)
class LabData:
    """A lab's data set: its train and test splits, with where they came from.

    Attributes:
        train, test: map-style datasets of `(image, label, ...)` items.
        class_names: class `i`'s name at index `i`.
        source: what was found, e.g. "MNIST subset", "CUB-200-2011", "synthetic birds".
        root: the folder the images were read from.
    """

    train: Dataset
    test: Dataset
    class_names: tuple[str, ...]
    source: str
    root: Path

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)


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


@dataclass(frozen=True, eq=False, repr=False)
class TensorImageDataset(Dataset):
    """Images decoded once: items are (normalised float image (3, H, W), label).

    Attributes:
        images: uint8 (N, 3, H, W), the decoded images (for galleries and nearest images).
        labels: int64 (N,).
        paths: the file each image came from, in the same order.
        class_names: class `i`'s name at index `i`.
        transform: applied to the uint8 image before normalisation (augmentation), or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    paths: tuple[Path, ...] = ()
    class_names: tuple[str, ...] = ()
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        """Check the tensors' dtypes and shapes agree."""
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"need one label per image: {len(self.images)} images, "
                f"labels of shape {tuple(self.labels.shape)}"
            )
        if self.paths and len(self.paths) != len(self.images):
            raise ValueError(f"{len(self.paths)} paths for {len(self.images)} images")

    def __repr__(self) -> str:
        """Sizes, not pixels: the dataset's repr shows up in notebooks."""
        shape = tuple(self.images.shape[1:])
        return (
            f"TensorImageDataset({len(self)} images {shape}, {self.num_classes} classes, "
            f"transform={self.transform!r})"
        )

    def __len__(self) -> int:
        """The number of images."""
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """The normalised (and, with a transform, augmented) image `index` and its label."""
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return normalize(image), int(self.labels[index])

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1

    def with_transform(
        self, transform: Callable[[torch.Tensor], torch.Tensor] | None
    ) -> TensorImageDataset:
        """The same images (shared, not copied) with another transform."""
        return replace(self, transform=transform)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> TensorImageDataset:
        """The images at `indices` (in that order), with the same classes and transform."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            paths=tuple(self.paths[i] for i in index.tolist()) if self.paths else (),
        )
