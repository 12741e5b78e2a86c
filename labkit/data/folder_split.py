"""The handout's `split.py` for a folder of class sub-folders (such as TensorFlow's
`flower_photos`): `<out>/train/<class>/<file>`, `<out>/val/<class>/<file>` and the index file
`<out>/class_idx.json` ({"0": "daisy", ...}) that `predict.py` reads.

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

from labkit.config import data_root
from labkit.data.birds import synthetic_birds_folder
from labkit.data.folders import list_image_folder
from labkit.data.layout import read_marker, write_once
from labkit.data.photo_folder import split_by_class
from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds

CLASS_INDEX_FILE = "class_idx.json"
SPLIT_VERSION = 1  # bump when the written layout changes
SPLITS = ("train", "val")


class SplitFolders(NamedTuple):
    """What `split_class_folder` wrote: the two split folders, the class index file, the class
    names by index, and the per-class counts (index `class`, columns `train`, `val`)."""

    train: Path
    val: Path
    class_index: Path
    class_names: tuple[str, ...]
    counts: pd.DataFrame


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

    Args:
        source: a folder of class sub-folders of images.
        out: the folder to create; must lie outside `source` (and `source` outside it).
        val_fraction, seed: `val_fraction` of every class (at least one image, at least one
            left for training) drawn with `seed` (`split_by_class`).
    Raises:
        FileNotFoundError, ValueError: a missing source, no class folders, a class folder
            without images or with a single one; each message names the folder.
        FileExistsError: `out` holds another split, or files labkit did not write.
    """
    source, out = Path(source), Path(out)
    class_names, files = list_image_folder(source)
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
    return SplitFolders(
        out / "train", out / "val", out / CLASS_INDEX_FILE, tuple(class_names), counts
    )


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
    remedy = "write it with labkit.data.folder_split.split_class_folder (data_prep/split_photos.py)"
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
