"""Birds by name: CUB-200-2011 when it is under the data folder, the synthetic birds otherwise.

The real set is looked for at `<data>/CUB_200_2011` (the folder `CUB_200_2011.tgz` unpacks to)
and at resized copies `<data>/CUB_200_2011-short<N>` written by `data_prep/prepare_cub.py`;
the smallest copy whose short side still covers the resize is used. A folder that is there but
broken raises `CubError` (never a silent fall-back to synthetic birds).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from labkit.config import data_root, shown_path
from labkit.data.cub import CUB_FOLDER, read_cub_index
from labkit.data.cub_dataset import BirdTransform, CubDataset
from labkit.data.lab_data import LabData
from labkit.data.photo_folder import split_by_class
from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds

CUB_SOURCE = "CUB-200-2011"
SYNTHETIC_SOURCE = "synthetic birds"
SOURCE_TASK = "synthetic source-task species"
PUT_CUB_THERE = "unpack CUB_200_2011.tgz there to use the real set (README: 'CUB-200-2011')"


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


def synthetic_birds_folder(base: Path, spec: SynthBirdsSpec) -> Path:
    """Where `spec`'s synthetic birds are written: `<base>/builtin/<spec.folder_name>` (as
    `labkit.data.builtin.write_builtin_data` writes them for the grader)."""
    return base / "builtin" / spec.folder_name


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
