"""Patch filtering: crop every proposal, score it with a filter net, keep the confident ones.

OPAM (Peng, He and Zhao, TIP 2018), object-level attention, step 2: the filter net (a CNN
trained on the images) scores each proposed patch; a patch whose soft-max probability of its
image's own label exceeds a threshold is kept, as extra training data for ClassNet and as the
pool from which candidate parts are later chosen.

Every crop is a `torchvision.ops.roi_align` (aligned=True) of the batch: all the patches of all
the images go through the model `batch_size` at a time, never one forward pass per patch
(`benchmarks/bench_patch_filter.py`).

Used in: 05_opam.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align
from tqdm.auto import tqdm

from labkit.training.model_utils import eval_mode, model_device

__all__ = ["crop_patches", "filter_patches", "kept_fraction", "patch_scores"]

BoxList = Sequence[torch.Tensor]  # one (P_i, 4) x1, y1, x2, y2 tensor per image


def _check_boxes(boxes: torch.Tensor, what: str) -> None:
    """(P, 4) x1, y1, x2, y2 with x2 > x1 and y2 > y1, all finite."""
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what}: need boxes (P, 4) x1, y1, x2, y2, got {tuple(boxes.shape)}")
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{what}: boxes hold NaN or infinite coordinates")
    empty = (boxes[:, 2:] <= boxes[:, :2]).any(dim=1)
    if empty.any():
        row = int(empty.nonzero()[0])
        raise ValueError(
            f"{what}: box {row} {boxes[row].tolist()} is empty (needs x2 > x1 and y2 > y1)"
        )


def _rois(boxes: BoxList | torch.Tensor, num_images: int) -> torch.Tensor:
    """(K, 5) image index, x1, y1, x2, y2 from a list of N (P_i, 4) or a (K, 5) tensor."""
    if isinstance(boxes, torch.Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(
                "need boxes as a list of (P_i, 4) tensors, one per image, or a (K, 5) tensor "
                f"(image index, x1, y1, x2, y2), got a tensor {tuple(boxes.shape)}"
            )
        index = boxes[:, 0]
        if ((index != index.round()) | (index < 0) | (index >= num_images)).any():
            raise ValueError(f"column 0 holds image indices: whole numbers in [0, {num_images})")
        _check_boxes(boxes[:, 1:], "boxes")
        return boxes.float()
    if len(boxes) != num_images:
        raise ValueError(f"got {len(boxes)} box tensors for {num_images} images; need one each")
    rows = []
    for i, b in enumerate(boxes):
        _check_boxes(b, f"image {i}")
        rows.append(torch.cat([b.new_full((len(b), 1), i), b], dim=1).float())
    return torch.cat(rows) if rows else torch.zeros(0, 5)


def _check_images(images: torch.Tensor, size: int) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape)
        raise ValueError(f"need float images (N, C, H, W), got {images.dtype} {shape}")
    if size < 1:
        raise ValueError(f"patch size must be at least 1 pixel, got {size}")


def _crop(images: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    # sampling_ratio=-1: ceil(box / size) bilinear samples per output pixel and axis, averaged;
    # one sample (a bilinear resize) when enlarging, a box filter against aliasing when shrinking
    rois = rois.to(device=images.device, dtype=images.dtype)
    return roi_align(images, rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def crop_patches(images: torch.Tensor, boxes: BoxList | torch.Tensor, size: int) -> torch.Tensor:
    """Crop every box of every image and resize it to size x size, in one `roi_align` call.

    Matches a bilinear `F.interpolate(crop, size, align_corners=False)` of an integer box when
    enlarging, except along the patch's border, where roi_align blends in the pixels just
    outside the box and interpolate repeats the box's edge pixels. Shrinking by a whole factor
    k averages each k x k block (as `F.avg_pool2d`); other shrinks average ceil(box / size)^2
    bilinear samples per output pixel, close to an antialiased resize.

    Args:
        images: (N, C, H, W) float.
        boxes: a list of N (P_i, 4) x1, y1, x2, y2 tensors in pixels (torchvision's list
            format), or a (K, 5) tensor whose first column is the image index.
        size: the side of the square patches.

    Returns:
        (K, C, size, size), K = sum of P_i, image by image in box order, on the images' device.
    """
    _check_images(images, size)
    return _crop(images, _rois(boxes, len(images)), size)


def patch_scores(
    model: nn.Module,
    images: torch.Tensor,
    boxes: BoxList,
    labels: torch.Tensor | Sequence[int],
    *,
    size: int,
    batch_size: int = 256,
    progress: bool = False,
) -> list[torch.Tensor]:
    """For every patch, the soft-max probability of its image's label (the filter net's score).

    Patches of all images are cropped (`crop_patches`) and passed through the model
    `batch_size` at a time across images, under no_grad in eval mode (the model's training
    flags are restored). Only the images a batch needs are moved to the model's device.

    Args:
        model: maps (B, C, size, size) to logits (B, num_classes).
        images: (N, C, H, W), normalised as the model expects.
        boxes: N (P_i, 4) x1, y1, x2, y2 tensors (P_i may be 0).
        labels: N class indices, each image's own label.
        size: side of the square patches the model sees.
        batch_size: patches per forward pass.
        progress: show a `tqdm.auto` bar over the batches.

    Returns:
        N float tensors (P_i,) on the images' device.
    """
    _check_images(images, size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(boxes, torch.Tensor):
        raise ValueError("need boxes as a list of (P_i, 4) tensors, one per image")
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (len(images),):
        raise ValueError(f"need one label per image: {len(images)}, got {tuple(labels.shape)}")
    rois = _rois(boxes, len(images)).to(images.device)  # (K, 5)
    labels = labels.to(images.device)
    device = model_device(model)
    scores = []
    starts = range(0, len(rois), batch_size)
    with torch.no_grad(), eval_mode(model):
        for start in tqdm(starts, desc="score patches", disable=not progress):
            batch = rois[start : start + batch_size]  # (B, 5)
            index = batch[:, 0].long()
            used, local = torch.unique(index, return_inverse=True)  # images this batch needs
            local_rois = torch.cat([local[:, None].float(), batch[:, 1:]], dim=1)
            crops = _crop(images[used].to(device), local_rois, size)  # (B, C, size, size)
            probs = F.softmax(model(crops), dim=1)  # (B, num_classes)
            rows = torch.arange(len(batch), device=device)
            scores.append(probs[rows, labels[index].to(device)].to(images.device))
    flat = torch.cat(scores) if scores else images.new_zeros(0)
    return list(flat.split([len(b) for b in boxes]))


def filter_patches(
    boxes: BoxList,
    scores: Sequence[torch.Tensor],
    *,
    threshold: float,
    max_per_image: int | None = None,
) -> list[torch.Tensor]:
    """Each image's boxes whose score exceeds `threshold`, best first, at most `max_per_image`.

    Args:
        boxes: N (P_i, 4) tensors.
        scores: N (P_i,) tensors (`patch_scores`).
        threshold: a probability in [0, 1]; a box is kept when its score is strictly above it.
        max_per_image: keep at most this many per image (the best); None keeps all above.

    Returns:
        N (Q_i, 4) tensors, Q_i <= P_i, in decreasing score (ties in box order).
    """
    if len(boxes) != len(scores):
        raise ValueError(f"got {len(boxes)} box tensors but {len(scores)} score tensors")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability in [0, 1], got {threshold}")
    if max_per_image is not None and max_per_image < 1:
        raise ValueError(f"max_per_image must be at least 1 (or None), got {max_per_image}")
    kept = []
    for i, (b, s) in enumerate(zip(boxes, scores, strict=True)):
        if s.shape != (len(b),):
            raise ValueError(f"image {i}: {len(b)} boxes but scores {tuple(s.shape)}")
        order = torch.argsort(s, descending=True, stable=True)
        order = order[s[order] > threshold][:max_per_image]
        kept.append(b[order])
    return kept


def kept_fraction(kept: BoxList, boxes: BoxList) -> float:
    """The share of all proposed boxes that `filter_patches` kept, over every image."""
    total = sum(len(b) for b in boxes)
    if total == 0:
        raise ValueError("no boxes were proposed, so no fraction was kept")
    return sum(len(b) for b in kept) / total
