"""Patch proposals: selective search (OpenCV contrib), or multi-scale sliding windows without it.

OPAM (Peng, He and Zhao, TIP 2018), object-level attention, step 1: selective search proposes
candidate patches of every image; a filter net then scores them (`labkit.attention.filtering`).
Selective search comes from OpenCV's contrib module (`cv2.ximgproc.segmentation`), an optional
dependency imported only when called; `multiscale_boxes` is the built-in fall-back.

Boxes are float32 (P, 4) x1, y1, x2, y2 in pixels of the image, the pixel grid's edges: a box
(0, 0, W, H) covers the whole W x H image (torchvision's `roi_align(aligned=True)` convention).

Used in: 05_opam.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from labkit.data.transforms import to_display_imagenet

__all__ = [
    "Proposals",
    "multiscale_boxes",
    "propose_patches",
    "selective_search_available",
    "selective_search_boxes",
]

SELECTIVE_SEARCH = "selective search"
MULTISCALE = "multi-scale windows"
_INSTALL = "pip install opencv-contrib-python-headless"
_METHODS = ("auto", "selective_search", "multiscale")
_MODES = {  # selective search's settings, by OpenCV's method that switches to them
    "fast": "switchToSelectiveSearchFast",
    "quality": "switchToSelectiveSearchQuality",
    "single": "switchToSingleStrategy",
}


class Proposals(NamedTuple):
    """Candidate patches of one image and how they were found."""

    boxes: torch.Tensor  # (P, 4) float32 x1, y1, x2, y2 in pixels
    method: str  # "selective search" or "multi-scale windows"


def _segmentation() -> Any:
    """OpenCV's `cv2.ximgproc.segmentation`, or ImportError naming the remedy."""
    try:
        import cv2

        return cv2.ximgproc.segmentation
    except (ImportError, AttributeError) as error:
        raise ImportError(
            "selective search needs OpenCV's contrib module (cv2.ximgproc.segmentation): "
            f"{_INSTALL} (uninstall a plain opencv-python first), or use method='multiscale'"
        ) from error


def selective_search_available() -> bool:
    """Whether OpenCV's contrib module (`cv2.ximgproc.segmentation`) can be imported."""
    try:
        _segmentation()
    except ImportError:
        return False
    return True


def _as_rgb_uint8(image: Any) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a uint8 HWC array, a PIL image, or a normalised (3, H, W) tensor.

    A float tensor is taken as ImageNet-normalised (as `CubDataset` returns it); a uint8 tensor
    as (3, H, W) pixels.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"need an image tensor (3, H, W), got {tuple(image.shape)}")
        if image.dtype == torch.uint8:
            return image.detach().cpu().permute(1, 2, 0).contiguous().numpy()
        if not image.is_floating_point():
            raise ValueError(f"need a float (normalised) or uint8 image tensor, got {image.dtype}")
        return np.round(to_display_imagenet(image) * 255.0).astype(np.uint8)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"need a uint8 RGB array (H, W, 3), got {image.dtype} {image.shape}; "
                "convert with np.asarray(pil_image.convert('RGB'))"
            )
        return image
    raise ValueError(
        f"need a uint8 (H, W, 3) array, a PIL image or a (3, H, W) tensor, got {type(image)}"
    )


def _image_size(image: Any) -> tuple[int, int]:
    """(height, width) of anything `_as_rgb_uint8` takes, without converting it."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    height, width, _ = _as_rgb_uint8(image).shape
    return height, width


def _unique_in_order(boxes: torch.Tensor) -> torch.Tensor:
    """The rows of `boxes` without repeats, each at its first position."""
    if len(boxes) == 0:
        return boxes
    _, inverse = torch.unique(boxes, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(boxes), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(boxes)), reduce="amin")
    return boxes[first.sort().values]


def _check_max_patches(max_patches: int | None, allow_none: bool) -> None:
    if max_patches is None and allow_none:
        return
    if max_patches is None or max_patches < 1:
        raise ValueError(f"max_patches must be at least 1, got {max_patches}")


def _seed_c_rand(seed: int) -> bool:
    """Seed the C library's `rand()`, which OpenCV's selective search ranks regions with.

    OpenCV ranks each region by `rand() / RAND_MAX * level` (Uijlings et al.'s pseudo-random
    ranking) and never seeds `rand()`, so two calls on one image order their boxes differently.
    Returns False where the C library cannot be reached (then the caller sorts the boxes).
    """
    if sys.platform == "win32":
        names = ["ucrtbase", "msvcrt"]
    else:
        names = [None, ctypes.util.find_library("c")]
    for name in names:
        try:
            ctypes.CDLL(name).srand(ctypes.c_uint(seed))
            return True
        except (OSError, AttributeError, TypeError):
            continue
    return False


def selective_search_boxes(
    image: Any,
    *,
    max_patches: int,
    mode: str = "fast",
    min_size: int = 16,
    seed: int = 0,
) -> torch.Tensor:
    """Selective search proposals (Uijlings et al. 2013) of one image, OpenCV's implementation.

    Args:
        image: uint8 (H, W, 3) RGB array, a PIL image, or an ImageNet-normalised float tensor
            (3, H, W) as `CubDataset` returns it (un-normalised with `to_display_imagenet`).
        max_patches: keep at most this many boxes, the first in selective search's ranking.
        mode: "fast" (2 colour spaces, 3 segmentation scales, 2 strategies), "quality" (5, 5, 4:
            more boxes, about 4 x slower) or "single" (one of each).
        min_size: drop boxes narrower or shorter than this many pixels.
        seed: seeds the pseudo-random ranking; the same image and seed give the same boxes.

    Returns:
        float32 (P, 4) x1, y1, x2, y2 in pixels of the image, P <= max_patches, no repeats.

    Raises:
        ImportError: OpenCV's contrib module is missing (`pip install
            opencv-contrib-python-headless`).
        ValueError: a bad image, max_patches < 1, min_size < 1 or an unknown mode.
    """
    _check_max_patches(max_patches, allow_none=False)
    if mode not in _MODES:
        raise ValueError(f"unknown selective search mode {mode!r}; use one of {tuple(_MODES)}")
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1 pixel, got {min_size}")
    segmentation = _segmentation()
    import cv2

    bgr = np.ascontiguousarray(_as_rgb_uint8(image)[:, :, ::-1])
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # a second pool of threads would compete with torch's
    try:
        search = segmentation.createSelectiveSearchSegmentation()
        search.setBaseImage(bgr)
        getattr(search, _MODES[mode])()
        seeded = _seed_c_rand(seed)
        rects = search.process()  # (P, 4) int x, y, w, h, best ranked first
    finally:
        cv2.setNumThreads(threads)
    rects = torch.as_tensor(np.asarray(rects, dtype=np.float32).reshape(-1, 4))
    boxes = torch.cat([rects[:, :2], rects[:, :2] + rects[:, 2:]], dim=1)
    if not seeded:  # OpenCV's ranking cannot be fixed: a seeded shuffle of the sorted boxes
        boxes = torch.unique(boxes, dim=0)
        boxes = boxes[torch.randperm(len(boxes), generator=torch.Generator().manual_seed(seed))]
    boxes = _unique_in_order(boxes)
    keep = (boxes[:, 2:] - boxes[:, :2] >= min_size).all(dim=1)
    return boxes[keep][:max_patches].contiguous()


def _starts(size: float, window: float, stride: float) -> list[float]:
    """Window starts from 0 to size - window, evenly spaced, no more than `stride` apart."""
    steps = math.ceil((size - window) / stride - 1e-9)
    if steps <= 0:
        return [0.0]
    return [i * (size - window) / steps for i in range(steps + 1)]


def multiscale_boxes(
    height: int,
    width: int,
    *,
    scales: Sequence[float] = (0.3, 0.45, 0.6, 0.75, 0.9),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    stride_fraction: float = 0.25,
    max_patches: int | None = None,
) -> torch.Tensor:
    """Sliding windows at several sizes and shapes: the proposals when OpenCV is absent.

    A window of scale s and aspect ratio r (width / height) has the area of a square s x the
    short side, so w = s * short * sqrt(r) and h = s * short / sqrt(r), each cut to the image;
    it slides over the image in steps of at most `stride_fraction` of its own size, from one
    edge to the other (both edges included). Corners are rounded to whole pixels.

    Args:
        height, width: the image's size in pixels.
        scales: window sides as fractions of the image's short side, each in (0, 1].
        aspect_ratios: width / height of the windows, each > 0.
        stride_fraction: step as a fraction of the window's width (height), in (0, 1].
        max_patches: at most this many windows, evenly spread over the full list (so every
            scale keeps some); None keeps them all.

    Returns:
        float32 (P, 4) x1, y1, x2, y2, scale by scale, ratio by ratio, rows then columns, no
        repeats, all inside the image.
    """
    if height < 1 or width < 1:
        raise ValueError(f"need an image of at least 1 x 1 pixels, got {height} x {width}")
    if not scales or any(not 0 < s <= 1 for s in scales):
        raise ValueError(f"scales must be fractions of the short side in (0, 1], got {scales}")
    if not aspect_ratios or any(r <= 0 for r in aspect_ratios):
        raise ValueError(f"aspect_ratios must be positive, got {aspect_ratios}")
    if not 0 < stride_fraction <= 1:
        raise ValueError(f"stride_fraction must be in (0, 1], got {stride_fraction}")
    _check_max_patches(max_patches, allow_none=True)
    short = min(height, width)
    rows = []
    for scale in scales:
        for ratio in aspect_ratios:
            w = min(scale * short * math.sqrt(ratio), width)
            h = min(scale * short / math.sqrt(ratio), height)
            for y in _starts(height, h, stride_fraction * h):
                for x in _starts(width, w, stride_fraction * w):
                    rows.append((x, y, x + w, y + h))
    boxes = torch.tensor(rows, dtype=torch.float32).round()
    boxes = _unique_in_order(boxes[(boxes[:, 2:] > boxes[:, :2]).all(dim=1)])
    if max_patches is not None and max_patches < len(boxes):
        boxes = boxes[torch.linspace(0, len(boxes) - 1, max_patches).round().long()]
    return boxes


def propose_patches(
    image: Any,
    *,
    max_patches: int,
    method: str = "auto",
    mode: str = "fast",
    min_size: int = 16,
) -> Proposals:
    """Candidate patches of one image: selective search when OpenCV's contrib module is there.

    Args:
        image: uint8 (H, W, 3) RGB array, a PIL image, or an ImageNet-normalised float tensor
            (3, H, W) as `CubDataset` returns it.
        max_patches: at most this many boxes.
        method: "auto" (selective search if available, else multi-scale windows),
            "selective_search" (ImportError naming the package when OpenCV's contrib module is
            missing) or "multiscale" (always the built-in windows).
        mode, min_size: selective search's settings (`selective_search_boxes`).

    Returns:
        Proposals(boxes (P, 4) float32 x1, y1, x2, y2, method "selective search" or
        "multi-scale windows").
    """
    if method not in _METHODS:
        raise ValueError(f"unknown proposal method {method!r}; use one of {_METHODS}")
    _check_max_patches(max_patches, allow_none=False)
    if method == "selective_search" or (method == "auto" and selective_search_available()):
        boxes = selective_search_boxes(image, max_patches=max_patches, mode=mode, min_size=min_size)
        return Proposals(boxes, SELECTIVE_SEARCH)
    height, width = _image_size(image)
    return Proposals(multiscale_boxes(height, width, max_patches=max_patches), MULTISCALE)
