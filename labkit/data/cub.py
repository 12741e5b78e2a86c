"""The CUB-200-2011 layout: its list files read and checked, every problem named with its file.

The official layout (Wah et al., 2011, "The Caltech-UCSD Birds-200-2011 Dataset"), as the
tarball `CUB_200_2011.tgz` unpacks it:

    images.txt              <image_id> <class folder>/<file>.jpg
    image_class_labels.txt  <image_id> <class_id>            (1-based)
    train_test_split.txt    <image_id> <is_training_image>   (1 train, 0 test: 5,994 / 5,794)
    classes.txt             <class_id> <class folder name>
    bounding_boxes.txt      <image_id> <x> <y> <width> <height>   (pixels of the original image)
    parts/parts.txt         <part_id> <part name>                 (15 parts; names have spaces)
    parts/part_locs.txt     <image_id> <part_id> <x> <y> <visible>
    images/<class folder>/<file>.jpg

The synthetic birds (`labkit.data.synthbirds`) are written in the same layout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CUB_FOLDER = "CUB_200_2011"  # the tarball's top folder
LIST_FILES = (
    "images.txt",
    "image_class_labels.txt",
    "train_test_split.txt",
    "classes.txt",
    "bounding_boxes.txt",
    "parts/parts.txt",
    "parts/part_locs.txt",
)
GET_CUB = (
    "get CUB_200_2011.tgz as the README's 'CUB-200-2011' section says, then check or unpack it "
    "with `python data_prep/prepare_cub.py <folder or .tgz> --decode`"
)
SHOWN_PROBLEMS = 8  # problems quoted in an exception; check_cub returns them all


class CubError(ValueError):
    """A CUB-layout folder that cannot be read; the message names each file or id and the remedy.

    Attributes:
        problems: every problem found, one line each.
    """

    def __init__(self, root: Path, problems: list[str], remedy: str = GET_CUB) -> None:
        self.problems = problems
        shown = problems[:SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown) + (
            f"\n  - ... and {more} more" if more else ""
        )
        super().__init__(f"CUB-200-2011 layout at {root} is not usable:\n{lines}\n{remedy}")


@dataclass(frozen=True, eq=False)
class CubIndex:
    """Everything the list files of one CUB-layout folder say, ordered by image id.

    Held in NumPy arrays (no Python object per image), so DataLoader workers share them
    without copying.

    Attributes:
        root: the folder holding the list files and `images/`.
        image_ids: (N,) int64, the official 1-based ids.
        files: (N,) str, image paths relative to `images/`.
        labels: (N,) int64, 0-based classes (`image_class_labels.txt` minus one).
        is_train: (N,) bool, the official split.
        boxes: (N, 4) float32, x, y, width, height in pixels of the original image.
        parts: (N, P, 3) float32, x, y (pixels of the original image) and visibility (0 or 1)
            of each part, in `part_names` order.
        class_names: the folder names of `classes.txt` (e.g. "001.Black_footed_Albatross").
        part_names: the names of `parts/parts.txt` (e.g. "left eye").
    """

    root: Path
    image_ids: np.ndarray
    files: np.ndarray
    labels: np.ndarray
    is_train: np.ndarray
    boxes: np.ndarray
    parts: np.ndarray
    class_names: tuple[str, ...]
    part_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_classes(self) -> int:
        """The number of classes in `classes.txt`."""
        return len(self.class_names)

    def split(self, name: str) -> np.ndarray:
        """Row positions of the official `train` or `test` split, in image-id order.

        Raises ValueError for another name.
        """
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return np.flatnonzero(self.is_train if name == "train" else ~self.is_train)

    def image_path(self, row: int) -> Path:
        """The image file of row `row`."""
        return self.root / "images" / str(self.files[row])


def flip_permutation(part_names: tuple[str, ...]) -> np.ndarray:
    """Indices that swap each "left ..." part with its "right ..." part: what a horizontal flip
    does to a bird's parts (its left eye becomes the right eye). Parts without a side map to
    themselves. (P,) int64."""
    position = {name: i for i, name in enumerate(part_names)}
    swapped = []
    for i, name in enumerate(part_names):
        side = re.match(r"(left|right)(\W.*)", name)
        if side:
            other = ("right" if side.group(1) == "left" else "left") + side.group(2)
            swapped.append(position.get(other, i))
        else:
            swapped.append(i)
    return np.asarray(swapped, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# reading the list files


def _read_rows(
    path: Path, fields: int, problems: list[str], split_last: bool = False
) -> list[list[str]]:
    """The whitespace-separated rows of a list file, each of `fields` fields (blank lines
    skipped). `split_last`: the last field keeps its spaces (part names). A missing or
    unreadable file and each malformed line add a problem naming the file and line."""
    name = path.name if path.parent.name != "parts" else f"parts/{path.name}"
    if not path.is_file():
        problems.append(f"{name} is missing")
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{name} cannot be read: {err}")
        return []
    rows = []
    bad = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = line.split(maxsplit=fields - 1) if split_last else line.split()
        if len(row) != fields:
            bad.append(number)
            continue
        rows.append(row)
    if bad:
        last = " (the last line: is the file truncated?)" if bad[-1] == number else ""
        problems.append(
            f"{name}: {len(bad)} line(s) without {fields} fields, first line {bad[0]}{last}"
        )
    if not rows and not bad:
        problems.append(f"{name} is empty")
    return rows


def _by_id(
    rows: list[list[str]],
    name: str,
    convert: Callable[[list[str]], tuple],
    problems: list[str],
) -> dict[int, tuple]:
    """`{id: convert(rest of row)}` from rows whose first field is an id; bad values and
    repeated ids add problems naming `name`."""
    table: dict[int, tuple] = {}
    repeated, bad = [], []
    for row in rows:
        try:
            key = int(row[0])
            value = convert(row[1:])
        except ValueError:
            bad.append(row[0])
            continue
        if key in table:
            repeated.append(key)
        table[key] = value
    if bad:
        problems.append(f"{name}: {len(bad)} line(s) with unreadable numbers, first id {bad[0]}")
    if repeated:
        problems.append(f"{name}: id {repeated[0]} listed more than once ({len(repeated)} ids)")
    return table


def _ids_text(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _compare_ids(images: set[int], other: set[int], name: str, problems: list[str]) -> None:
    """Problems for ids in images.txt missing from `name`, and ids of `name` not in images.txt."""
    missing, extra = sorted(images - other), sorted(other - images)
    if missing:
        problems.append(f"image id(s) {_ids_text(missing)} of images.txt missing from {name}")
    if extra:
        problems.append(f"{name} lists image id(s) {_ids_text(extra)} that images.txt does not")


def _float(value: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(value)
    return number


def _parse(root: Path, check_files: bool) -> tuple[CubIndex | None, list[str]]:
    """The index and the problems found (the index is None when there is any)."""
    problems: list[str] = []
    read = {name: root / name for name in LIST_FILES}
    images = _by_id(
        _read_rows(read["images.txt"], 2, problems), "images.txt", lambda r: (r[0],), problems
    )
    labels = _by_id(
        _read_rows(read["image_class_labels.txt"], 2, problems),
        "image_class_labels.txt",
        lambda r: (int(r[0]),),
        problems,
    )
    split = _by_id(
        _read_rows(read["train_test_split.txt"], 2, problems),
        "train_test_split.txt",
        lambda r: (int(r[0]),),
        problems,
    )
    classes = _by_id(
        _read_rows(read["classes.txt"], 2, problems), "classes.txt", lambda r: (r[0],), problems
    )
    boxes = _by_id(
        _read_rows(read["bounding_boxes.txt"], 5, problems),
        "bounding_boxes.txt",
        lambda r: tuple(_float(v) for v in r),
        problems,
    )
    part_rows = _read_rows(read["parts/parts.txt"], 2, problems, split_last=True)
    parts = _by_id(part_rows, "parts/parts.txt", lambda r: (r[0].strip(),), problems)
    locations = _read_rows(read["parts/part_locs.txt"], 5, problems)
    if not images:
        return None, problems

    ids = sorted(images)
    id_set = set(ids)
    for name, table in (
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("bounding_boxes.txt", boxes),
    ):
        if table:
            _compare_ids(id_set, set(table), name, problems)

    class_ids = sorted(classes)
    if classes and class_ids != list(range(1, len(class_ids) + 1)):
        problems.append(
            f"classes.txt: class ids should run 1..{len(class_ids)}, got {class_ids[:5]}..."
        )
    unknown = sorted({c for (c,) in labels.values()} - set(classes))
    if classes and unknown:
        problems.append(
            f"image_class_labels.txt uses class id(s) {_ids_text(unknown)} "
            "that classes.txt does not list"
        )
    flags = {v for (v,) in split.values()}
    if flags - {0, 1}:
        problems.append(
            "train_test_split.txt: is_training_image must be 0 or 1, "
            f"got {sorted(flags - {0, 1})[:3]}"
        )
    if labels and split and classes and not unknown:
        trained = {labels[i][0] for i in ids if i in labels and split.get(i, (0,))[0] == 1}
        empty = [c for c in class_ids if c not in trained]
        if empty:
            names = ", ".join(classes[c][0] for c in empty[:3])
            problems.append(
                f"class(es) {names}{' ...' if len(empty) > 3 else ''} "
                "have no training image in train_test_split.txt"
            )
    bad_boxes = [i for i, (x, y, w, h) in boxes.items() if w <= 0 or h <= 0 or x < 0 or y < 0]
    if bad_boxes:
        problems.append(
            f"bounding_boxes.txt: image id(s) {_ids_text(sorted(bad_boxes))} "
            "have a box with negative corner or no area"
        )

    part_ids = sorted(parts)
    if parts and part_ids != list(range(1, len(part_ids) + 1)):
        problems.append(f"parts/parts.txt: part ids should run 1..{len(part_ids)}")
    part_array = np.zeros((len(ids), len(part_ids), 3), dtype=np.float32)
    if parts and locations:
        row_of = {image_id: row for row, image_id in enumerate(ids)}
        seen = np.zeros((len(ids), len(part_ids)), dtype=bool)
        unknown_images, unreadable = set(), 0
        for fields in locations:
            try:
                image_id, part_id = int(fields[0]), int(fields[1])
                x, y, visible = _float(fields[2]), _float(fields[3]), int(float(fields[4]))
            except ValueError:
                unreadable += 1
                continue
            if image_id not in row_of or not 1 <= part_id <= len(part_ids):
                unknown_images.add(image_id)
                continue
            part_array[row_of[image_id], part_id - 1] = (x, y, 1.0 if visible else 0.0)
            seen[row_of[image_id], part_id - 1] = True
        if unreadable:
            problems.append(f"parts/part_locs.txt: {unreadable} line(s) with unreadable numbers")
        if unknown_images:
            problems.append(
                f"parts/part_locs.txt names image id(s) {_ids_text(sorted(unknown_images))} "
                "that images.txt does not list, or a part id parts.txt does not"
            )
        incomplete = [ids[r] for r in np.flatnonzero(~seen.all(axis=1))]
        if incomplete:
            problems.append(
                f"parts/part_locs.txt lacks part(s) of image id(s) {_ids_text(incomplete)} "
                "(is the file truncated?)"
            )

    if check_files:
        absent = [i for i in ids if not (root / "images" / images[i][0]).is_file()]
        if absent:
            shown = ", ".join(f"id {i}: images/{images[i][0]}" for i in absent[:3])
            more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
            problems.append(
                f"{len(absent)} image(s) listed in images.txt are absent from images/ "
                f"({shown}{more})"
            )
    if problems:
        return None, problems
    index = CubIndex(
        root=root,
        image_ids=np.asarray(ids, dtype=np.int64),
        files=np.asarray([images[i][0] for i in ids], dtype=str),
        labels=np.asarray([labels[i][0] - 1 for i in ids], dtype=np.int64),
        is_train=np.asarray([split[i][0] == 1 for i in ids], dtype=bool),
        boxes=np.asarray([boxes[i] for i in ids], dtype=np.float32).reshape(-1, 4),
        parts=part_array,
        class_names=tuple(classes[c][0] for c in class_ids),
        part_names=tuple(parts[p][0] for p in part_ids),
    )
    return index, problems


def read_cub_index(root: str | os.PathLike, check_files: bool = True) -> CubIndex:
    """Read and cross-check the list files of a CUB-layout folder.

    Args:
        root: the folder holding `images.txt` and `images/` (e.g. `.../CUB_200_2011`).
        check_files: also check that every listed image file exists (a stat per image).
    Returns:
        The CubIndex, labels 0-based.
    Raises:
        CubError: a missing or truncated list file, an id present in one list and not another,
            a class with no training image, an absent image file...; every problem found, each
            naming its file or id, then how to get the data set.
    """
    root = Path(root)
    if not root.is_dir():
        raise CubError(root, [f"{root} is not a folder"])
    index, problems = _parse(root, check_files)
    if index is None:
        raise CubError(root, problems)
    return index


def listed_images(root: str | os.PathLike) -> list[tuple[int, Path]]:
    """(image id, file) of every readable line of `root/images.txt`, in file order, whatever
    else is wrong with the folder (empty when images.txt is missing); `check_cub` reports the
    problems."""
    rows = _read_rows(Path(root) / "images.txt", 2, [])
    return [(int(i), Path(root) / "images" / name) for i, name in rows if i.isdigit()]


def check_cub(root: str | os.PathLike) -> list[str]:
    """Every problem of a CUB-layout folder's lists and files (empty when it is usable)."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root} is not a folder"]
    return _parse(root, check_files=True)[1]
