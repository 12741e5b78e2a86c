"""Folders of class sub-folders of photos (such as TensorFlow's `flower_photos`): read lazily
with torchvision's ImageFolder and split by class in memory (`load_photo_folder`), or split on
disk as the handout's `split.py` does (`split_class_folder`): `<out>/train/<class>/<file>`,
`<out>/val/<class>/<file>` and the index file `<out>/class_idx.json` ({"0": "daisy", ...}) that
`predict.py` reads. Only the files ImageFolder reads (torchvision's `IMG_EXTENSIONS`: no GIF)
are split; the others are named (`SplitFolders.left_out`).

Used in: 01_vgg (the split and the class index), data_prep/split_photos.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.data import Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from labkit.atomic import read_marker, write_once
from labkit.config import data_root, shown_path
from labkit.data.datasets import LabData, split_by_class
from labkit.data.images import list_image_folder, open_rgb
from labkit.data.synthbirds import SynthBirdsSpec, synthetic_birds_folder, write_synthetic_birds
from labkit.data.transforms import photo_transform

PHOTO_SOURCE = "photo folder"
REPLACE_PHOTO = "replace or delete this file (the folder's other images are unaffected)"
CLASS_INDEX_FILE = "class_idx.json"
SPLIT_VERSION = 1  # bump when the written layout changes
SPLITS = ("train", "val")


def load_photo(path: str) -> Image.Image:
    """ImageFolder's loader: every mode as RGB, errors naming the file (`open_rgb`)."""
    return open_rgb(path, remedy=REPLACE_PHOTO)[0]


def load_photo_folder(
    folder: str | os.PathLike,
    *,
    resize: int,
    crop: int,
    test_fraction: float = 0.1,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> LabData:
    """`folder/<class>/<image>` split by class into train and test; prints one line.

    Args:
        folder: a path, or a folder name under the data folder (e.g. "flower_photos").
        resize, crop: see `photo_transform`.
        test_fraction, seed: the split (`split_by_class`).
    Raises:
        FileNotFoundError, ValueError: a missing folder, no class folders, a class folder
            without images or with a single one; each message names the folder.
    """
    path = Path(folder)
    if not path.is_absolute() and not path.exists():
        path = data_root(root) / path
    loader_files(path)  # errors that name the folder, before ImageFolder's own
    train_set = ImageFolder(path, photo_transform(resize, crop, True), loader=load_photo)
    test_set = ImageFolder(path, photo_transform(resize, crop, False), loader=load_photo)
    labels = np.asarray(train_set.targets)
    folders = [str(path / name) for name in train_set.classes]
    train_idx, test_idx = split_by_class(labels, test_fraction, seed, folders)
    data = LabData(
        Subset(train_set, train_idx.tolist()),
        Subset(test_set, test_idx.tolist()),
        tuple(train_set.classes),
        PHOTO_SOURCE,
        path,
    )
    if verbose:
        print(
            f"data: {PHOTO_SOURCE} at {shown_path(path)} - train {len(train_idx)}, test "
            f"{len(test_idx)} images ({test_fraction:.0%} of each class, seed {seed}), "
            f"{data.num_classes} classes, resized to {resize}px, {crop}px crops"
        )
    return data


class SplitFolders(NamedTuple):
    """What `split_class_folder` wrote: the two split folders, the class index file, the class
    names by index, and the per-class counts (index `class`, columns `train`, `val`)."""

    train: Path
    val: Path
    class_index: Path
    class_names: tuple[str, ...]
    counts: pd.DataFrame
    left_out: tuple[Path, ...] = ()  # files in the class folders that ImageFolder skips


def split_class_folder(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitFolders:
    """Split `source/<class>/<file>` by class into `out/train` and `out/val`, once.

    Files are hard-linked when the file system allows, else copied; `source` is never
    modified (but editing a hard-linked file in place edits it in `source` too). Classes take
    ImageFolder's sorted order in `out/class_idx.json`. The folder is written atomically with a
    marker naming the source, fraction, seed and file count: the same call again reuses it.
    Only files that ImageFolder reads are split and counted; a printed note names the others
    (a GIF, a text file), which `left_out` lists, so the counts are the data sets'.

    Args:
        source: a folder of class sub-folders of images.
        out: the folder to create; must lie outside `source` (and `source` outside it).
        val_fraction, seed: `val_fraction` of every class (at least one image, at least one
            left for training) drawn with `seed` (`split_by_class`).
    Raises:
        FileNotFoundError, ValueError: a missing source, no class folders, a class folder
            without images the loader reads or with a single one; each message names the
            folder.
        FileExistsError: `out` holds another split, or files labkit did not write.
    """
    source, out = Path(source), Path(out)
    class_names, files, left_out = loader_files(source)
    if _nested(source, out):
        raise ValueError(
            f"{out} and {source} lie inside one another; choose an out folder outside the source"
        )
    labels = np.repeat(np.arange(len(files)), [len(f) for f in files])
    folders = [str(source / name) for name in class_names]
    _, val_idx = split_by_class(labels, val_fraction, seed, folders)
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val_idx] = True
    paths = [path for class_files in files for path in class_files]
    plan = [
        (path, f"{SPLITS[int(val)]}/{class_names[label]}/{path.name}")
        for path, label, val in zip(paths, labels, is_val, strict=True)
    ]
    version = (
        f"labkit class-folder split v{SPLIT_VERSION}: {source.resolve()}, val_fraction "
        f"{val_fraction}, seed {seed}, {len(paths)} files"
    )
    found = read_marker(out)
    if found is not None and found != version:
        raise FileExistsError(
            f"{out} holds another split ({found}), not the one asked for ({version}); delete it "
            "or choose another out folder"
        )

    def write(folder: Path) -> None:
        _link_or_copy(plan, folder)
        write_class_index(folder / CLASS_INDEX_FILE, class_names)

    write_once(out, version, write, remedy="delete it or choose another out folder")
    val_counts = np.bincount(labels[is_val], minlength=len(class_names))
    counts = pd.DataFrame(
        {"train": np.bincount(labels, minlength=len(class_names)) - val_counts, "val": val_counts},
        index=pd.Index(class_names, name="class"),
    )
    if left_out:
        shown = ", ".join(str(p.relative_to(source)) for p in left_out[:3])
        print(
            f"note: {len(left_out)} files in the class folders of {shown_path(source)} are not "
            f"images ImageFolder reads ({shown}{', ...' if len(left_out) > 3 else ''}): left "
            "out of the split; convert them (to .png, say) to use them"
        )
    return SplitFolders(
        out / "train",
        out / "val",
        out / CLASS_INDEX_FILE,
        tuple(class_names),
        counts,
        tuple(left_out),
    )


def loader_files(folder: Path) -> tuple[list[str], list[list[Path]], list[Path]]:
    """Class names, each class's files that ImageFolder reads (sorted), and the class folders'
    other entries (sorted; hidden ones ignored). ImageFolder takes torchvision's
    `IMG_EXTENSIONS` only: a GIF among the photos would be counted but never loaded.

    Raises FileNotFoundError, ValueError (`list_image_folder`'s), and ValueError naming a
    class folder of no file the loader reads.
    """
    class_names, _ = list_image_folder(folder)  # the folder's own errors, named
    files, left_out = [], []
    for name in class_names:
        entries = sorted(p for p in (folder / name).iterdir() if not p.name.startswith("."))
        readable = [
            p.is_file() and has_file_allowed_extension(p.name, IMG_EXTENSIONS) for p in entries
        ]
        read = [p for p, ok in zip(entries, readable, strict=True) if ok]
        skipped = [p for p, ok in zip(entries, readable, strict=True) if not ok]
        if not read:
            raise ValueError(
                f"class folder {folder / name} holds no image the loader reads (ImageFolder "
                f"takes {', '.join(IMG_EXTENSIONS)}; found {', '.join(p.name for p in skipped[:3])}"
                f"{', ...' if len(skipped) > 3 else ''}): convert them (to .png, say) or delete "
                "the folder"
            )
        files.append(read)
        left_out += skipped
    return class_names, files, left_out


def _nested(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a.is_relative_to(b) or b.is_relative_to(a)


def _link_or_copy(plan: Sequence[tuple[Path, str]], folder: Path) -> None:
    """Hard-link each (source file, relative target) under `folder`; copy once linking fails."""
    link = True
    for path, name in plan:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(path, target)
                continue
            except OSError:  # another file system, or links not supported: copy from now on
                link = False
        shutil.copy2(path, target)


def write_class_index(path: str | os.PathLike, class_names: Sequence[str]) -> Path:
    """Write the handout's `class_idx.json`: {"0": name, "1": name, ...}; return its path."""
    path = Path(path)
    index = {str(i): str(name) for i, name in enumerate(class_names)}
    path.write_text(json.dumps(index, indent=4) + "\n", encoding="utf-8")
    return path


def read_class_index(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names by index from a `class_idx.json` ({"0": "daisy", ...}).

    Raises FileNotFoundError naming a missing file, and ValueError naming the file for bad
    JSON, names that are not strings, or keys that are not "0".."K-1".
    """
    path = Path(path)
    remedy = "write it with labkit.data.photos.split_class_folder (data_prep/split_photos.py)"
    if not path.is_file():
        raise FileNotFoundError(f"class index {path} not found; {remedy}")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read class index {path}: {err}; {remedy}") from err
    if not isinstance(index, dict) or not index:
        raise ValueError(f"class index {path} is not a non-empty {{index: name}} object; {remedy}")
    expected = [str(i) for i in range(len(index))]
    if set(index) != set(expected):
        raise ValueError(
            f"class index {path} has keys {sorted(index)[:8]}, expected '0'..'{len(index) - 1}'; "
            f"{remedy}"
        )
    names = tuple(index[key] for key in expected)
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"class index {path} holds names that are not strings; {remedy}")
    return names


def synthetic_photo_folder(spec: SynthBirdsSpec, root: str | os.PathLike | None = None) -> Path:
    """The `images/<NNN.Species>/<file>.jpg` tree of `spec`'s synthetic birds (written once
    under `<data>/builtin`): a folder of class sub-folders, the stand-in for `flower_photos`."""
    folder = synthetic_birds_folder(data_root(root), spec)
    return write_synthetic_birds(folder, spec) / "images"


def find_photo_folder(
    name: str = "flower_photos", root: str | os.PathLike | None = None
) -> Path | None:
    """`<data>/<name>` when it is a folder with class sub-folders, else None."""
    path = data_root(root) / name
    if path.is_dir() and any(d.is_dir() and not d.name.startswith(".") for d in path.iterdir()):
        return path
    return None
