"""The handout's image layout: `<root>/<split>/<class>/<id>.png` plus `<root>/<split>.csv`.

Writing goes to a hidden sibling folder first and is renamed into place with a marker file
written last, so an interrupted write never leaves a folder that looks complete.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

MARKER = ".labkit-complete"  # written last; holds the version string of what was written
CSV_COLUMNS = ("id", "name", "class")
LAYOUT_NAMES = ("train", "test", "train.csv", "test.csv", MARKER)  # all a layout folder holds


def read_marker(root: Path) -> str | None:
    """The version string in `root`'s completion marker, or None when there is none."""
    marker = Path(root) / MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


def is_complete(root: Path, version: str) -> bool:
    """True when `root` holds a finished write of exactly `version`."""
    return read_marker(root) == version


def write_once(
    root: Path,
    version: str,
    write: Callable[[Path], None],
    overwrite: bool = False,
    remedy: str = "delete it or choose another folder",
) -> Path:
    """Fill the folder `root` once with `write(folder)`, unless it already holds `version`.

    `write` fills a hidden sibling folder; the marker holding `version` is written last and the
    folder renamed into place, so an interrupted write never looks finished, and an older
    labkit write (another version) or an empty folder is replaced. Returns `root`.

    Raises FileExistsError, naming `root` and `remedy`, when `root` holds files that labkit did
    not write (no marker), unless `overwrite`.
    """
    root = Path(root)
    if is_complete(root, version):
        return root
    if root.exists() and any(root.iterdir()) and read_marker(root) is None and not overwrite:
        raise FileExistsError(
            f"{root} exists and was not written by labkit (no {MARKER}); {remedy}"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        write(tmp)
        (tmp / MARKER).write_text(version + "\n", encoding="utf-8")  # last: marks completion
        _move_into_place(tmp, root, version)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def write_split_layout(
    root: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    version: str,
    overwrite: bool = False,
) -> Path:
    """Write `{split: (images, labels)}` as PNGs and CSVs under `root`, unless already complete.

    Args:
        root: the folder to create (its parent is created if needed).
        splits: per split, uint8 images (N, H, W) grey or (N, H, W, 3) RGB, and labels (N,).
        version: the marker text; a folder whose marker matches is left untouched.
        overwrite: replace a non-empty `root` that labkit did not write (no marker).
    Returns:
        `root`.
    """

    def write(folder: Path) -> None:
        for split, (images, labels) in splits.items():
            _write_split(folder, split, images, labels)

    remedy = "delete it, choose another output folder, or pass overwrite=True (--overwrite)"
    return write_once(root, version, write, overwrite, remedy)


def _write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write one split's PNGs (sorted ids, classes interleaved as given) and its CSV."""
    if images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(f"split {split!r}: need uint8 images and one label per image")
    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"{split}/{int(label)}/{i:05d}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image
        Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="PNG")
        rows.append((i, name, int(label)))
    with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def _move_into_place(tmp: Path, root: Path, version: str) -> None:
    """Rename the finished `tmp` to `root`, replacing an older labkit write or an empty folder."""
    old = None
    if is_complete(root, version):  # another process finished the same write first: keep it
        return
    if root.exists():
        if read_marker(root) is not None or not any(root.iterdir()):
            old = root.with_name(f".{root.name}.old-{os.getpid()}")
            os.replace(root, old)
        else:  # overwrite=True on a folder labkit did not write
            shutil.rmtree(root)
    try:
        os.replace(tmp, root)
    except OSError:
        if not is_complete(root, version):  # another process did not finish it either
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sample_per_class(
    labels: np.ndarray, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of `per_class` items per class drawn with `seed`, and the sorted rest."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
        for c in np.unique(labels)
    ]
    chosen_idx = np.sort(np.concatenate(chosen))
    return chosen_idx, np.setdiff1d(np.arange(len(labels)), chosen_idx)


def validate_split_csv(root: Path, split: str, remedy: str) -> int:
    """Check `<root>/<split>.csv` against the files; return its row count (0 when it is absent).

    Raises ValueError naming the CSV for missing columns or a class that disagrees with the
    folder, and FileNotFoundError naming the CSV line and the file when an image is missing.
    """
    csv_path = Path(root) / f"{split}.csv"
    if not csv_path.is_file():
        return 0
    try:
        table = pd.read_csv(csv_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {csv_path}: {err}; {remedy}") from err
    missing_columns = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing_columns:
        raise ValueError(
            f"{csv_path} lacks columns {missing_columns} (expected {list(CSV_COLUMNS)}); {remedy}"
        )
    for row, name, label in zip(table.index, table["name"], table["class"], strict=True):
        path = Path(root) / str(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"{csv_path} line {row + 2} names {name}, but {path} is missing; {remedy}"
            )
        if path.parent.name != str(label):
            raise ValueError(
                f"{csv_path} line {row + 2}: class {label} but {name} lies in folder "
                f"{path.parent.name!r}; {remedy}"
            )
    return len(table)
