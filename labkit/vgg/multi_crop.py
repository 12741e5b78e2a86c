"""Multi-crop evaluation: soft-max posteriors averaged over a grid of crops, flips and scales.

Simonyan & Zisserman (2015), section 3.2; handout 001: at each test scale Q (the short side
after an isotropic rescale) a regular 5 x 5 grid of 224 x 224 crops and their horizontal
flips, 50 crops per scale, 150 over three scales. Complementary to dense evaluation: a crop is
padded with zeros at its border, where the dense net sees the neighbouring pixels.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn

from labkit.training.model_utils import eval_mode, model_device

__all__ = ["crops_per_image", "grid_crops", "multi_crop_scores"]


def _offsets(size: int, crop: int, grid: int) -> list[int]:
    """`grid` evenly spaced crop starts from 0 to size - crop; one start: the centre, rounded
    as torchvision's center_crop rounds it."""
    if grid == 1:
        return [int(round((size - crop) / 2.0))]
    return [int(round(i * (size - crop) / (grid - 1))) for i in range(grid)]


def _check(images: torch.Tensor, crop: int, grid: int) -> None:
    if images.ndim != 4:
        raise ValueError(f"need images (N, C, H, W), got {tuple(images.shape)}")
    if grid < 1 or crop < 1:
        raise ValueError(f"crop and grid must be at least 1, got crop={crop}, grid={grid}")
    height, width = images.shape[-2:]
    if crop > height or crop > width:
        raise ValueError(
            f"crop {crop} is larger than the {height} x {width} images; use a smaller crop or "
            "resize the images first"
        )


def grid_crops(images: torch.Tensor, crop: int, grid: int = 5) -> torch.Tensor:
    """A regular grid x grid of square crops of every image, corners included.

    Args:
        images: (N, C, H, W).
        crop: crop side in pixels.
        grid: crops per side; their top-left corners are evenly spaced from 0 to H - crop (and
            W - crop); grid=1 gives the centre crop (as torchvision's center_crop).

    Returns:
        (N, grid * grid, C, crop, crop), row by row (top offset outer, left offset inner).

    Raises:
        ValueError: images not (N, C, H, W), crop or grid below 1, or crop > H or W.
    """
    _check(images, crop, grid)
    height, width = images.shape[-2:]
    crops = [
        images[..., top : top + crop, left : left + crop]
        for top in _offsets(height, crop, grid)
        for left in _offsets(width, crop, grid)
    ]
    return torch.stack(crops, dim=1)


def crops_per_image(grid: int, scales: Sequence[int], flip: bool) -> int:
    """Crops that multi-crop evaluation passes through the model per image: grid^2 x flips x
    scales (5 x 5 x 2 x 3 = 150 in the paper)."""
    return grid * grid * (2 if flip else 1) * len(scales)


def _crops(
    images: torch.Tensor, scales: Sequence[int], crop: int, grid: int, flip: bool
) -> Iterator[tuple[int, torch.Tensor]]:
    """(image index, crop (C, crop, crop)) for every scale, grid position and flip."""
    for scale in scales:
        resized = TF.resize(images, [scale], antialias=True)  # short side -> scale
        height, width = resized.shape[-2:]
        for top in _offsets(height, crop, grid):
            for left in _offsets(width, crop, grid):
                for index, image in enumerate(resized[..., top : top + crop, left : left + crop]):
                    yield index, image
                    if flip:
                        yield index, image.flip(-1)


def multi_crop_scores(
    model: nn.Module,
    images: torch.Tensor,
    *,
    scales: Sequence[int],
    crop: int,
    grid: int = 5,
    flip: bool = True,
    batch_size: int = 64,
) -> torch.Tensor:
    """Class posteriors by multi-crop evaluation (Simonyan & Zisserman 2015, section 3.2).

    For each scale Q the images are rescaled (short side Q, antialiased), cut into a grid x grid
    of crops, optionally flipped; the soft-max posteriors of all `crops_per_image` crops are
    averaged. Crops go through the model `batch_size` at a time, across scales; eval mode,
    no_grad, the model's training flags restored. Only one rescaled copy is held at a time.

    Args:
        model: maps (B, 3, crop, crop) to logits (B, num_classes).
        images: (N, 3, H, W), normalised as the model expects, all of one size.
        scales: test scales Q, each at least `crop` (the paper: 256, 384, 512).
        crop: crop side (224 for VGG).
        grid: crops per side at each scale (5 in the paper).
        flip: also score each crop's horizontal flip.
        batch_size: crops per forward pass.

    Returns:
        Posteriors (N, num_classes), rows summing to 1, on the images' device.

    Raises:
        ValueError: no scales, a scale smaller than `crop` (naming it), batch_size < 1, or bad
            images (empty or not (N, C, H, W)), crop or grid (as `grid_crops`).
    """
    if not scales:
        raise ValueError("multi-crop evaluation needs at least one scale, e.g. scales=[256]")
    for scale in scales:
        if scale < crop:
            raise ValueError(
                f"scale {scale} is smaller than the crop {crop}: a {crop} x {crop} crop does not "
                f"fit an image whose short side is {scale}; use scales of at least {crop}"
            )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check(images, crop, grid)
    if len(images) == 0:
        raise ValueError("no images to score: pass a batch (N, 3, H, W) with N >= 1")
    device = model_device(model)
    total: torch.Tensor | None = None

    def run(batch: list[tuple[int, torch.Tensor]]) -> None:
        nonlocal total
        index = torch.tensor([i for i, _ in batch], device=device)
        crops = torch.stack([c for _, c in batch]).to(device)  # (B, C, crop, crop)
        posteriors = F.softmax(model(crops), dim=1)  # (B, num_classes)
        if total is None:
            total = posteriors.new_zeros(len(images), posteriors.shape[1])
        total.index_add_(0, index, posteriors)

    batch: list[tuple[int, torch.Tensor]] = []
    with torch.no_grad(), eval_mode(model):
        for item in _crops(images, scales, crop, grid, flip):
            batch.append(item)
            if len(batch) == batch_size:
                run(batch)
                batch = []
        if batch:
            run(batch)
    return (total / crops_per_image(grid, scales, flip)).to(images.device)
