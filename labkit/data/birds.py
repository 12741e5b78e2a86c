"""Birds by name: CUB-200-2011 when it is under the data folder, the synthetic birds otherwise;
`CubDataset`, one split of a CUB-layout folder decoded lazily, its box and parts following every
resize, crop and flip.

The real set is looked for at `<data>/CUB_200_2011` (the folder `CUB_200_2011.tgz` unpacks to)
and at resized copies `<data>/CUB_200_2011-short<N>` written by `data_prep/prepare_cub.py`;
the smallest copy whose short side still covers the resize is used. A folder that is there but
broken raises `CubError` (never a silent fall-back to synthetic birds).

Nothing is cached: each item opens its file, so memory stays flat however large the set is
(`benchmarks/bench_cub_epoch.py`). JPEGs are decoded at a reduced scale when the target size
allows it (libjpeg's DCT scaling, through Pillow's `draft`), which makes a small profile's epoch
several times faster on full-size photos.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from labkit.config import data_root, shown_path
from labkit.data.cub import CUB_FOLDER, GET_CUB, CubIndex, flip_permutation, read_cub_index
from labkit.data.datasets import LabData, split_by_class
from labkit.data.images import open_rgb
from labkit.data.synthbirds import SynthBirdsSpec, synthetic_birds_folder, write_synthetic_birds
from labkit.data.transforms import normalize_imagenet

CUB_SOURCE = "CUB-200-2011"
SYNTHETIC_SOURCE = "synthetic birds"
SOURCE_TASK = "synthetic source-task species"
PUT_CUB_THERE = "`labkit fetch cub` brings the real set (README: 'CUB-200-2011')"


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
        image, factor = open_rgb(self.index.image_path(row), t.resize, region, GET_CUB)
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


def find_cub(base: Path, resize: int) -> Path | None:
    """The CUB-200-2011 folder under `base` to read for images resized to `resize` px.

    `base/CUB_200_2011-short<N>` with the smallest N >= `resize`, else `base/CUB_200_2011`;
    None when neither exists.
    """
    copies = []
    for path in base.glob(f"{CUB_FOLDER}-short*"):
        match = re.fullmatch(rf"{CUB_FOLDER}-short(\d+)", path.name)
        if match and path.is_dir() and int(match.group(1)) >= resize:
            copies.append((int(match.group(1)), path))
    if copies:
        return min(copies)[1]
    original = base / CUB_FOLDER
    return original if original.exists() else None


def _lab_data(
    folder: Path, source: str, resize: int, crop: int, crop_to_box: bool, geometry: bool
) -> LabData:
    """The official train and test splits of a CUB-layout folder (random crops and flips for
    training, centre crops for testing)."""
    index = read_cub_index(folder)
    train_t, test_t = BirdTransform(resize, crop, train=True), BirdTransform(resize, crop, False)
    return LabData(
        CubDataset(index, "train", train_t, crop_to_box, geometry),
        CubDataset(index, "test", test_t, crop_to_box, geometry),
        index.class_names,
        source,
        folder,
    )


def load_birds(
    *,
    resize: int,
    crop: int,
    synthetic: SynthBirdsSpec,
    crop_to_box: bool = False,
    with_geometry: bool = False,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> LabData:
    """The birds of labs 01, 04 and 05; prints one line saying which and where.

    Args:
        resize, crop: short side after resizing and the square crop, in pixels (random crop and
            flip for training, centre crop for testing: `BirdTransform`).
        synthetic: the synthetic set to use (and write once) when CUB-200-2011 is absent.
        crop_to_box: crop each image to its bounding box first.
        with_geometry: items also carry the box and the parts (`CubDataset`).
        root: the data folder (default `$LABKIT_DATA`, else `data/`).
    Raises:
        CubError: a CUB-200-2011 folder is there but cannot be used; the message lists its
            problems and what to do.
    """
    base = data_root(root)
    cub = find_cub(base, resize)
    if cub is not None:
        folder, source = cub, CUB_SOURCE
        detail = f"at {shown_path(cub)}"
    else:
        folder = write_synthetic_birds(synthetic_birds_folder(base, synthetic), synthetic)
        source = SYNTHETIC_SOURCE
        detail = f"(no {CUB_FOLDER} at {shown_path(base / CUB_FOLDER)}: {PUT_CUB_THERE})"
    data = _lab_data(folder, source, resize, crop, crop_to_box, with_geometry)
    if verbose:
        print(
            f"data: {source} {detail} - train {len(data.train)}, test {len(data.test)} images, "
            f"{data.num_classes} classes, resized to {resize}px, {crop}px crops"
            + (", cropped to the box" if crop_to_box else "")
        )
    return data


def load_source_birds(
    *,
    resize: int,
    crop: int,
    synthetic: SynthBirdsSpec,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> LabData:
    """The source task: synthetic species disjoint from the lab's, for pretraining a backbone
    when ImageNet weights are not on disk. Written once under `<data>/builtin`.

    Raises ValueError when `synthetic.task` is not "source".
    """
    if synthetic.task != "source":
        raise ValueError(
            f"the source task needs SynthBirdsSpec(task='source'), got {synthetic.task!r}"
        )
    base = data_root(root)
    folder = write_synthetic_birds(synthetic_birds_folder(base, synthetic), synthetic)
    data = _lab_data(folder, SOURCE_TASK, resize, crop, False, False)
    if verbose:
        print(
            f"data: {SOURCE_TASK} at {shown_path(folder)} - train {len(data.train)}, test "
            f"{len(data.test)} images, {data.num_classes} classes (none shared with the lab's)"
        )
    return data


def carve_validation(
    train: CubDataset, fraction: float, seed: int = 0
) -> tuple[CubDataset, CubDataset]:
    """Split a training set into (train, validation): `fraction` of every class, drawn with
    `seed`, for schedules and early stopping that never look at the test set.

    The validation part is scored on centre crops (the training transform with `train=False`).
    Raises ValueError for a fraction outside (0, 1) or a class with fewer than two images.
    """
    keep, held_out = split_by_class(train.labels, fraction, seed)
    evaluation = replace(train.transform, train=False)
    return (
        CubDataset(train.index, train.rows[keep], train.transform, train.crop_to_box,
                   train.with_geometry),
        CubDataset(train.index, train.rows[held_out], evaluation, train.crop_to_box,
                   train.with_geometry),
    )  # fmt: skip
