"""Images of a CUB-layout folder decoded lazily, with their box and parts following every resize,
crop and flip.

Nothing is cached: each item opens its file, so memory stays flat however large the set is
(`benchmarks/bench_cub_epoch.py`). JPEGs are decoded at a reduced scale when the target size
allows it (libjpeg's DCT scaling, through Pillow's `draft`), which makes a small profile's epoch
several times faster on full-size photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from labkit.data.cub import GET_CUB, CubIndex, flip_permutation
from labkit.data.folders import UnconvertibleImageError, to_rgb8

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights expect these
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


@dataclass(frozen=True)
class BirdTransform:
    """Resize the short side to `resize`, take a `crop` x `crop` square, normalise.

    Training (`train=True`) takes a random crop and flips half the images left-right; testing
    takes the centre crop. The HBP authors use resize 512, crop 448 (handout 000).

    Raises ValueError when `crop` exceeds `resize` or either is below 1.
    """

    resize: int
    crop: int
    train: bool

    def __post_init__(self) -> None:
        if not 1 <= self.crop <= self.resize:
            raise ValueError(
                f"need 1 <= crop <= resize, got crop {self.crop} and resize {self.resize}"
            )


def open_rgb(
    path,
    short_side: int | None = None,
    region: tuple[float, float] | None = None,
    remedy: str = GET_CUB,
) -> tuple[Image.Image, float]:
    """A file as an 8-bit RGB PIL image, and the scale from the file's pixels to the returned ones.

    Grayscale, CMYK, palette and RGBA images become RGB (`labkit.data.folders.to_rgb8`'s
    rules); the format is read from the bytes, so a PNG named `.jpg` loads. A JPEG is decoded at
    the smallest DCT scale (1/2, 1/4, 1/8) that keeps the short side of `region` (width, height
    in the file's pixels; default the whole image) at least `short_side` pixels.

    Raises ValueError naming the file and `remedy` (default: how to get and check
    CUB-200-2011) for a missing, truncated or undecodable image.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if short_side is not None and image.format == "JPEG":
                scale = short_side / max(1.0, min(region or (width, height)))
                image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
            image.load()  # decodes now: a truncated file fails here
            factor = image.size[0] / width
            rgb = Image.fromarray(to_rgb8(image))
    except UnconvertibleImageError as err:
        raise ValueError(f"cannot convert image {path}: {err}; {remedy}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot decode image {path}: {err}; {remedy}") from err
    return rgb, factor


def normalize_imagenet(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 tensor (3, H, W) normalised with ImageNet's mean and std."""
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
    return (pixels.to(torch.float32) / 255.0 - _MEAN) / _STD


def to_display_imagenet(x: torch.Tensor) -> np.ndarray:
    """Normalised images (3, H, W) or (N, 3, H, W) as HWC float32 in [0, 1] for matplotlib."""
    x = x.detach().cpu().to(torch.float32) * _STD + _MEAN
    return x.clamp(0.0, 1.0).movedim(-3, -1).numpy()


class CubDataset(Dataset):
    """One split of a CUB-layout folder; items decoded on access.

    Items are `(image, label)` or, with `with_geometry=True`,
    `(image, label, box, parts)`:
        image: float32 (3, crop, crop), ImageNet-normalised.
        label: int, 0-based class.
        box: float32 (4,), x1, y1, x2, y2 in pixels of the returned image, clipped to it.
        parts: float32 (P, 3), x, y in pixels of the returned image and visibility (1 or 0);
            a part that falls outside the crop, or was not visible, has visibility 0 and x = y = 0.
            A flipped image has its left and right parts swapped (the bird's left eye is now
            where its right eye was).

    Args:
        index: the folder's lists (`read_cub_index`).
        split: "train" or "test" (the official split), or an array of row positions.
        transform: the resize, crop and flip.
        crop_to_box: crop each image to its bounding box before the transform.
    """

    def __init__(
        self,
        index: CubIndex,
        split: str | np.ndarray,
        transform: BirdTransform,
        crop_to_box: bool = False,
        with_geometry: bool = False,
    ) -> None:
        self.index = index
        self.rows = index.split(split) if isinstance(split, str) else np.asarray(split)
        self.transform = transform
        self.crop_to_box = crop_to_box
        self.with_geometry = with_geometry
        self._flip = flip_permutation(index.part_names)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64, the label of each item."""
        return self.index.labels[self.rows]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, label order."""
        return self.index.class_names

    def __getitem__(self, i: int):
        row = int(self.rows[i])
        t = self.transform
        x, y, w, h = (float(v) for v in self.index.boxes[row])
        region = (w, h) if self.crop_to_box else None
        image, factor = open_rgb(self.index.image_path(row), t.resize, region)
        box = np.array([x, y, x + w, y + h], dtype=np.float64) * factor
        parts = self.index.parts[row].astype(np.float64)
        xy, visible = parts[:, :2] * factor, parts[:, 2] > 0
        if self.crop_to_box:
            left, top = int(np.floor(box[0])), int(np.floor(box[1]))
            right = min(image.width, int(np.ceil(box[2])))
            bottom = min(image.height, int(np.ceil(box[3])))
            image = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
            box, xy = box - [left, top, left, top], xy - [left, top]
        scale = t.resize / min(image.size)
        size = (max(t.crop, round(image.width * scale)), max(t.crop, round(image.height * scale)))
        sx, sy = size[0] / image.width, size[1] / image.height
        image = image.resize(size, Image.Resampling.BILINEAR)
        box, xy = box * [sx, sy, sx, sy], xy * [sx, sy]
        if t.train:
            x0 = int(torch.randint(0, size[0] - t.crop + 1, ()).item())
            y0 = int(torch.randint(0, size[1] - t.crop + 1, ()).item())
        else:
            x0, y0 = (size[0] - t.crop) // 2, (size[1] - t.crop) // 2
        image = image.crop((x0, y0, x0 + t.crop, y0 + t.crop))
        box, xy = box - [x0, y0, x0, y0], xy - [x0, y0]
        if t.train and torch.rand(()).item() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            box = np.array([t.crop - box[2], box[1], t.crop - box[0], box[3]])
            xy[:, 0] = t.crop - xy[:, 0]
            xy, visible = xy[self._flip], visible[self._flip]
        label = int(self.index.labels[row])
        tensor = normalize_imagenet(image)
        if not self.with_geometry:
            return tensor, label
        inside = (xy >= 0).all(axis=1) & (xy < t.crop).all(axis=1)
        visible = visible & inside
        out_parts = np.zeros((len(xy), 3), dtype=np.float32)
        out_parts[visible, :2] = xy[visible]
        out_parts[:, 2] = visible
        box = np.clip(box, 0, t.crop).astype(np.float32)
        return tensor, label, torch.from_numpy(box), torch.from_numpy(out_parts)
