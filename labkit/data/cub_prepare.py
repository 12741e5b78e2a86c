"""Preparing CUB-200-2011 for the labs: unpack the tarball, report every problem at once, and
write a resized copy so an epoch is not bound by decoding full-size JPEGs.

`data_prep/prepare_cub.py` is the command line over these functions.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from labkit.atomic import write_once
from labkit.data.cub import (
    CUB_FOLDER,
    GET_CUB,
    LIST_FILES,
    check_cub,
    listed_images,
    read_cub_index,
)
from labkit.data.images import open_rgb


def unpack_cub(archive: Path, out: Path) -> Path:
    """Unpack `CUB_200_2011.tgz` into `out`; return the `CUB_200_2011` folder inside it.

    Members are extracted with tarfile's "data" filter where Python has it (no absolute paths,
    links out of `out` or device files). An existing `out/CUB_200_2011` is left as it is.
    Raises ValueError naming the archive when it is not a readable tarball or holds no
    CUB_200_2011/images.txt.
    """
    archive, out = Path(archive), Path(out)
    folder = out / CUB_FOLDER
    if folder.exists():
        return folder
    try:
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            if f"{CUB_FOLDER}/images.txt" not in names:
                raise ValueError(
                    f"{archive} holds no {CUB_FOLDER}/images.txt: is it CUB_200_2011.tgz "
                    "(CUB-200-2011, not CUB-200 from 2010)?"
                )
            out.mkdir(parents=True, exist_ok=True)
            members = [m for m in tar.getmembers() if m.name.split("/")[0] == CUB_FOLDER]
            tmp = Path(tempfile.mkdtemp(prefix=f".{CUB_FOLDER}.partial-", dir=out))
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python < 3.10.12: no filters; refuse unsafe names ourselves
                    for member in members:
                        if member.issym() or member.islnk() or ".." in Path(member.name).parts:
                            raise ValueError(f"{archive}: unsafe member {member.name}")
                    tar.extractall(tmp, members=members)
                (tmp / CUB_FOLDER).rename(folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError(
            f"cannot unpack {archive}: {err}; download CUB_200_2011.tgz again (truncated?)"
        ) from err
    return folder


def undecodable_images(root: Path, progress: bool = True) -> list[str]:
    """One line per image listed in `root/images.txt` that is there but cannot be decoded
    (truncated, not an image, a mode with no RGB rule); empty when all decode. Reads every
    image once, whatever else is wrong with the folder (absent files are `check_cub`'s)."""
    present = [(i, path) for i, path in listed_images(root) if path.is_file()]
    if progress:
        present = tqdm(present, desc="decoding every image", unit="image")
    problems = []
    for image_id, path in present:
        try:
            open_rgb(path, remedy=GET_CUB)
        except ValueError as err:
            problems.append(f"image id {image_id}: {str(err).split('; ')[0]}")
    return problems


def cub_problems(root: Path, decode: bool, progress: bool = True) -> list[str]:
    """Every problem of a CUB-layout folder at once: its lists and files, and with `decode`
    every listed image that does not decode (a truncated download shows both kinds)."""
    problems = check_cub(root)
    if decode and Path(root).is_dir():
        problems += undecodable_images(root, progress)
    return problems


def write_resized_copy(
    root: Path, short_side: int, out: Path | None = None, progress: bool = True
) -> Path:
    """A copy of the CUB-layout folder `root` whose images have at most `short_side` pixels on
    their short side (larger ones shrunk, smaller ones kept at their size), all saved as RGB
    JPEG (quality 95), with `bounding_boxes.txt` and `parts/part_locs.txt` scaled to match.

    Written to `out` (default `<root's parent>/CUB_200_2011-short<short_side>`, where
    `labkit.data.find_cub` looks) through a hidden sibling renamed into place with a marker
    written last; a finished copy is reused. Raises CubError for a broken `root`, ValueError
    naming an undecodable image, FileExistsError for an `out` that labkit did not write.
    """
    index = read_cub_index(root)
    out = Path(out) if out is not None else Path(root).parent / f"{CUB_FOLDER}-short{short_side}"
    version = f"labkit resized copy of {Path(root).resolve()}: short side <= {short_side}"

    def write(folder: Path) -> None:
        scales = []
        rows: Iterable[int] = range(len(index))
        if progress:
            rows = tqdm(rows, desc=f"resizing to short side {short_side}", unit="image")
        for row in rows:
            image, factor = open_rgb(index.image_path(row), short_side, remedy=GET_CUB)
            scale = min(1.0, short_side / min(image.size))
            if scale < 1.0:
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image = image.resize(size, Image.Resampling.LANCZOS)
            target = folder / "images" / str(index.files[row])
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="JPEG", quality=95)
            scales.append(factor * scale)
        for name in LIST_FILES:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            if name not in ("bounding_boxes.txt", "parts/part_locs.txt"):
                shutil.copyfile(Path(root) / name, folder / name)
        scale_of = dict(zip(index.image_ids.tolist(), scales, strict=True))
        _scale_list(
            Path(root) / "bounding_boxes.txt", folder / "bounding_boxes.txt", scale_of, 1, 5
        )
        _scale_list(
            Path(root) / "parts/part_locs.txt", folder / "parts/part_locs.txt", scale_of, 2, 4
        )

    return write_once(out, version, write, remedy="delete it or pass another folder")


def _scale_list(
    source: Path, target: Path, scale_of: dict[int, float], first: int, end: int
) -> None:
    """Copy a list file, multiplying fields [first, end) of each line by its image's scale."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields:
            continue
        scale = scale_of[int(fields[0])]
        fields[first:end] = [f"{float(v) * scale:.1f}" for v in fields[first:end]]
        lines.append(" ".join(fields))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
