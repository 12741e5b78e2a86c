"""A dataset of images decoded once into one uint8 tensor; normalisation and its inverse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

MEAN = (0.5, 0.5, 0.5)  # per channel; maps [0, 1] to [-1, 1]
STD = (0.5, 0.5, 0.5)
# built once, read only: normalize() runs per image, and building tensors costs more than using them
_SCALE = torch.tensor([1.0 / (255.0 * s) for s in STD]).view(3, 1, 1)
_SHIFT = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).view(3, 1, 1)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 3, H, W) as float32 normalised with MEAN and STD."""
    return images.to(torch.float32, copy=True).mul_(_SCALE).add_(_SHIFT)


def to_display(x: torch.Tensor) -> np.ndarray:
    """Images (3, H, W) or (N, 3, H, W), normalised float or uint8, as HWC float32 in [0, 1]."""
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    else:
        x = x.to(torch.float32) * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    return x.clamp(0.0, 1.0).movedim(-3, -1).numpy()  # (..., H, W, 3)


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
