"""Datasets of box crops: the object crops ObjectNet trains on and the aligned part crops of
PartNet, cut from a dataset's images and resized with torchvision's `roi_align`.

Used in: 05_opam.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from labkit.attention.filtering import crop_patches

__all__ = ["BoxCrops", "crop_boxes"]


def crop_boxes(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crops of `boxes` (K, 4; x1, y1, x2, y2 in pixels) of one image (3, H, W), each resized
    to size x size: (K, 3, size, size) (`labkit.attention.crop_patches` on one image).

    Raises ValueError for a size below 1 or boxes that are not (K, 4).
    """
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"need boxes (K, 4), got {tuple(boxes.shape)}")
    return crop_patches(image[None].float(), [boxes.float()], size)


class BoxCrops(Dataset):
    """One item per image of `images`: the crops of its boxes, with the image's label.

    Items are `(crop, label)`: crop (3, size, size) when each image has one box (`boxes` of
    shape (N, 4): ObjectNet's object crops), or (n, 3, size, size) for n boxes per image
    (`boxes` (N, n, 4): PartNet's parts in their aligned order).

    Args:
        images: a dataset whose items begin with `(image (3, H, W), label)`, the images the
            boxes were found on (same pixel grid).
        boxes: (N, 4) or (N, n, 4) in pixels.
        size: the crops' side in pixels.
        flip: flip each item's crops left-right with probability 1/2 (training).
    Raises:
        ValueError: a box count that is not one per image, or a size below 1.
    """

    def __init__(
        self, images: Dataset, boxes: torch.Tensor, size: int, *, flip: bool = False
    ) -> None:
        if len(boxes) != len(images) or boxes.shape[-1] != 4 or boxes.dim() not in (2, 3):
            raise ValueError(
                f"need one box (N, 4) or one set of boxes (N, n, 4) per image: {len(images)} "
                f"images, boxes {tuple(boxes.shape)}"
            )
        if size < 1:
            raise ValueError(f"crop size must be at least 1 pixel, got {size}")
        self.images, self.boxes, self.size, self.flip = images, boxes.float(), size, flip

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> Sequence[int]:
        """The images' labels, when the image dataset has them (`CubDataset.labels`)."""
        return self.images.labels  # type: ignore[attr-defined]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[i][:2]
        boxes = self.boxes[i]
        crops = crop_boxes(image, boxes.reshape(-1, 4), self.size)
        if self.flip and torch.rand(()).item() < 0.5:
            crops = crops.flip(-1)
        return (crops[0] if boxes.dim() == 1 else crops), int(label)
