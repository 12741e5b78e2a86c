"""`labkit fetch NAME`: the real data sets and ImageNet weights, downloaded when asked (no lab
downloads by itself), checked against their published checksums and laid out where the labs
look for them (`SOURCES`): VGG-16 and VGG-19 weights into torchvision's cache, CUB-200-2011
unpacked and checked, flower_photos unpacked and split, the MNIST files made into the subset.

A file is written to `<file>.part`, resumed by a later run (HTTP Range), checked, and only then
renamed to its name; an archive is unpacked into a hidden folder renamed into place. So nothing
half-written lies where a lab reads. A file placed by hand where the download would go is
checked and used: the way on a machine without internet.

Used in: labkit.cli (`labkit fetch`); the labs' data lines name the command.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.hub import HASH_REGEX
from torchvision.datasets import MNIST
from torchvision.datasets.utils import USER_AGENT, calculate_md5, extract_archive
from torchvision.models import get_model_weights
from tqdm.auto import tqdm

from labkit.config import data_root, shown_path
from labkit.data.cub import CUB_FOLDER, check_cub, read_cub_index
from labkit.data.cub_prepare import unpack_cub
from labkit.data.digits import find_mnist_subset
from labkit.data.images import list_image_folder
from labkit.data.mnist import make_mnist_subset
from labkit.data.photos import find_photo_folder, split_class_folder
from labkit.models.weights import WEIGHTS

__all__ = ["SOURCES", "FetchError", "Remote", "Source", "download", "fetch", "sources_table"]

DOWNLOADS = "downloads"  # under the data folder: the archives, kept after unpacking
# the official archive on CaltechDATA (Wah et al., 2011); md5 as published with the data set
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
CUB_MD5 = "97eceeb196236b17998738112f37df78"
# TensorFlow's five-class photos; sha256 and size from TensorFlow Datasets' tf_flowers checksums
FLOWERS_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)
FLOWERS_SHA256 = "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
FLOWERS_FOLDER = "flower_photos"
CHUNK = 1 << 20  # bytes read at a time
ATTEMPTS = 3  # connections to one URL before the download is left for the next run to resume
TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped


class FetchError(RuntimeError):
    """A fetch that failed; the message says what failed and how to place the file by hand."""


@dataclass(frozen=True)
class Remote:
    """One file to download."""

    file_name: str  # the name it is saved under
    urls: tuple[str, ...]  # tried in turn (mirrors)
    algorithm: str  # "md5" or "sha256"
    digest: str  # the published hex digest, or its leading part (torch.hub's file names)
    size: int | None = None  # bytes, when published: a cut file's message shows both sizes


@dataclass(frozen=True)
class Source:
    """What `labkit fetch NAME` brings: files, where they go, how they become what labs read."""

    name: str  # the command's argument, e.g. "cub"
    title: str  # for people, e.g. "CUB-200-2011"
    files: tuple[Remote, ...]
    used_by: str  # e.g. "labs 04 and 05"
    folder: Callable[[Path], Path]  # data folder -> where the files are downloaded
    ready: Callable[[Path], Path | None]  # data folder -> what labs read, when already there
    prepare: Callable[[Sequence[Path], Path], str]  # (files, data folder) -> what is where


def fetch(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool = True,
    sources: dict[str, Source] | None = None,
) -> str:
    """Bring the source `name` where the labs look for it; return one line saying what is where.

    Args:
        root: the data folder (default `$LABKIT_DATA`, else `data/`).
        url: a mirror: the file's URL, or a folder URL (ending in "/", and always for a source
            of several files) that holds the files under their names.
        sources: the table to look `name` up in (default `SOURCES`).
    Raises:
        ValueError: an unknown name.
        FetchError: a download or check that failed; the message says how to place the file
            by hand.
    """
    sources = SOURCES if sources is None else sources
    if name not in sources:
        raise ValueError(f"nothing called {name!r} to fetch; known: {', '.join(sources)}")
    source = sources[name]
    base = data_root(root)
    found = source.ready(base)
    if found is not None:
        return f"{source.title}: already at {shown_path(found)} ({source.used_by}); not downloaded"
    folder, several = source.folder(base), len(source.files) > 1
    try:
        files = [
            download(
                remote, folder, url=_mirror(url, remote, several), progress=progress, name=name
            )
            for remote in source.files
        ]
    except FetchError as err:
        if not several:
            raise
        names = ", ".join(remote.file_name for remote in source.files)
        raise FetchError(f"{err}\n{source.title} needs all of {names} in {folder}.") from err
    return source.prepare(files, base)


def _mirror(url: str | None, remote: Remote, several: bool) -> str | None:
    if url is None or not (several or url.endswith("/")):
        return url
    return f"{url.rstrip('/')}/{remote.file_name}"


def download(
    remote: Remote,
    folder: Path,
    *,
    url: str | None = None,
    progress: bool = True,
    name: str = "NAME",
) -> Path:
    """`folder/remote.file_name`, downloaded (from `url`, else each of `remote.urls` in turn)
    unless a file that passes the checksum is already there; returns its path.

    The bytes go to `<file>.part`, which a dropped connection leaves for the next run to resume;
    the file gets its name only once its checksum matches (a mismatching .part is deleted).

    Raises FetchError naming each URL's failure and how to place the file by hand (`name` is
    the `labkit fetch` argument the message quotes).
    """
    target = Path(folder) / remote.file_name
    by_hand = (
        f"To place it by hand: download {remote.urls[0]} where there is internet (or ask your "
        f"instructor for {remote.file_name}), put it at {target}, and run `labkit fetch {name}` "
        f"again: it checks the file's {remote.algorithm} and goes on from there."
    )
    if target.is_file():
        problem = _checksum_problem(target, remote)
        if problem:
            raise FetchError(f"{target} is there, but {problem}. Delete it. {by_hand}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    failures = []
    for link in (url,) if url else remote.urls:
        try:
            _resume(link, part, remote.size, progress)
        except (OSError, http.client.HTTPException) as err:  # URLError and HTTPError included
            failures.append(f"{link}: {_reason(err)}")
            continue
        problem = _checksum_problem(part, remote)
        if problem:
            part.unlink()
            failures.append(f"{link}: downloaded, but {problem}; not kept")
            continue
        os.replace(part, target)
        return target
    kept = ""
    if part.is_file():
        kept = f"{part} ({part.stat().st_size:,} bytes) is kept: the next run resumes it.\n"
    lines = "\n".join(f"  - {failure}" for failure in failures)
    raise FetchError(f"could not download {remote.file_name}:\n{lines}\n{kept}{by_hand}")


def _resume(url: str, part: Path, size: int | None, progress: bool) -> None:
    """Append the rest of `url` to `part` from its current size (HTTP Range), reconnecting up
    to ATTEMPTS times when a connection drops; a server that ignores Range sends it all again.

    A loop over urllib rather than torchvision's `download_url` or torch.hub's
    `download_url_to_file`: both start from byte 0, so a 1.1 GB archive dropped at 90% would
    start over, and they offer no mirror for torch.hub's files.
    """
    error: OSError | http.client.HTTPException = ConnectionError("no attempt")
    for _ in range(ATTEMPTS):
        have = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": USER_AGENT} | ({"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=TIMEOUT
            )
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # nothing after `have`: the part is whole
                return
            raise
        with response:
            if have and response.status != 206:  # Range ignored: the whole file comes
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else size
            try:
                _copy(response, part, have, total, progress)
            except (OSError, http.client.HTTPException) as err:  # reset or timed out mid-file
                error = err
                continue
        got = part.stat().st_size
        if total is None or got >= total:
            return
        error = ConnectionError(f"the connection dropped after {got:,} of {total:,} bytes")
    raise error


def _copy(response, part: Path, have: int, total: int | None, progress: bool) -> None:
    """Write `response`'s body to `part` (appended after `have` bytes), with a progress bar."""
    name = part.name.removesuffix(".part")
    with (
        open(part, "ab" if have else "wb") as f,
        tqdm(
            total=total, initial=have, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
            disable=not progress,
        ) as bar,
    ):  # fmt: skip
        while chunk := response.read(CHUNK):
            f.write(chunk)
            bar.update(len(chunk))


def _reason(err: BaseException) -> str:
    """One phrase for a failed download."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot reach it ({err.reason}): is this machine offline?"
    return str(err) or type(err).__name__


def _checksum_problem(path: Path, remote: Remote) -> str:
    """What is wrong with `path` ("" when its digest starts with `remote.digest`)."""
    if remote.algorithm == "md5":
        digest = calculate_md5(path)
    else:
        digest = hashlib.new(remote.algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        digest = digest.hexdigest()
    if digest.startswith(remote.digest):
        return ""
    size = path.stat().st_size
    cut = f" ({size:,} of {remote.size:,} bytes)" if remote.size and size != remote.size else ""
    return (
        f"its {remote.algorithm} is {digest[: len(remote.digest)]}, not the published "
        f"{remote.digest}{cut}: a damaged or another file"
    )


# ---------------------------------------------------------------------------------------------
# what each source becomes


def _weights_source(arch: str, name: str, used_by: str) -> Source:
    """torchvision's ImageNet weights of `arch`, into torch.hub's cache (where its own download
    would put them, and `labkit.models.weights.Weights.find` looks)."""
    weights = get_model_weights(arch).IMAGENET1K_V1
    file_name = Path(weights.url).name
    prefix = HASH_REGEX.search(file_name).group(1)  # torch.hub's check: sha256 starts with it
    title = f"{name}'s ImageNet weights"
    return Source(
        name=f"{arch}-weights",
        title=title,
        files=(Remote(file_name, (weights.url,), "sha256", prefix),),
        used_by=used_by,
        folder=lambda base: Path(torch.hub.get_dir()) / "checkpoints",
        ready=lambda base: WEIGHTS[arch].find(root=base),
        prepare=lambda files, base: f"{title} at {shown_path(files[0])} ({used_by})",
    )


def _cub_ready(base: Path) -> Path | None:
    folder = base / CUB_FOLDER
    if not folder.exists():
        return None
    problems = check_cub(folder)
    if problems:
        raise FetchError(_unusable(folder, problems, "cub"))
    return folder


def _unusable(folder: Path, problems: list[str], name: str) -> str:
    lines = "\n".join(f"  - {p}" for p in problems[:8])
    return f"{folder} is there but not usable:\n{lines}\nDelete it and run `labkit fetch {name}`."


def _prepare_cub(files: Sequence[Path], base: Path) -> str:
    """Unpack the checked archive into `base` and check the lists and files."""
    try:
        folder = unpack_cub(files[0], base)
    except ValueError as err:
        raise FetchError(f"{err}; nothing was written to {base / CUB_FOLDER}") from err
    problems = check_cub(folder)
    if problems:
        raise FetchError(_unusable(folder, problems, "cub"))
    index = read_cub_index(folder, check_files=False)
    train = int(index.is_train.sum())
    return (
        f"CUB-200-2011 at {shown_path(folder)}: {len(index):,} images ({train:,} train, "
        f"{len(index) - train:,} test), {index.num_classes} classes (labs 01, 04 and 05). A "
        f"copy that decodes faster: python data_prep/prepare_cub.py {folder} --short-side 512"
    )


def _unpack(archive: Path, base: Path, top: str) -> Path:
    """Extract `archive` (torchvision's `extract_archive`) into a hidden folder in `base` and
    rename its `top` folder to `base/top`; nothing is left behind on an error."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}.partial-", dir=base))
    try:
        try:
            extract_archive(archive, tmp)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise FetchError(
                f"cannot unpack {archive}: {err}; delete it and run the command again (a "
                f"truncated file?). Nothing was written to {base / top}."
            ) from err
        try:
            list_image_folder(tmp / top)
        except (FileNotFoundError, ValueError) as err:
            raise FetchError(f"{archive} does not hold the expected {top}/ folder: {err}") from err
        (tmp / top).rename(base / top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return base / top


def _prepare_flowers(files: Sequence[Path], base: Path) -> str:
    """Unpack flower_photos, then write the handout's split (val 20%, seed 0)."""
    if (base / FLOWERS_FOLDER).exists():
        raise FetchError(
            f"{base / FLOWERS_FOLDER} is there but holds no class folders: delete it and run "
            "`labkit fetch flowers` again"
        )
    folder = _unpack(files[0], base, FLOWERS_FOLDER)
    split = split_class_folder(folder, base / f"{FLOWERS_FOLDER}-split", val_fraction=0.2, seed=0)
    counts = split.counts.sum()
    return (
        f"flower_photos at {shown_path(folder)}: {int(counts.sum()):,} photos, "
        f"{len(split.class_names)} classes (lab 01); the handout's split at "
        f"{shown_path(split.train.parent)}: train {int(counts['train']):,}, val "
        f"{int(counts['val']):,} (20% of each class, seed 0), with {split.class_index.name}"
    )


def _prepare_mnist(files: Sequence[Path], base: Path) -> str:
    """The handout's subset (200 / 100 per class, seed 0) from the four IDX files."""
    try:
        out = make_mnist_subset(files[0].parent, base / "mnist")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        raise FetchError(f"cannot build the MNIST subset: {err}") from err
    return (
        f"MNIST subset at {shown_path(out)}: 2,000 training and 1,000 test images (200 and 100 "
        "per class, seed 0; labs 02 and 03)"
    )


SOURCES: dict[str, Source] = {
    "vgg16-weights": _weights_source("vgg16", "VGG-16", "labs 04 and 05"),
    "vgg19-weights": _weights_source("vgg19", "VGG-19", "lab 01's full profile"),
    "cub": Source(
        name="cub",
        title="CUB-200-2011",
        files=(Remote("CUB_200_2011.tgz", (CUB_URL,), "md5", CUB_MD5, 1_150_585_339),),
        used_by="labs 01, 04 and 05",
        folder=lambda base: base / DOWNLOADS,
        ready=_cub_ready,
        prepare=_prepare_cub,
    ),
    "flowers": Source(
        name="flowers",
        title="flower_photos",
        files=(Remote("flower_photos.tgz", (FLOWERS_URL,), "sha256", FLOWERS_SHA256, 228_813_984),),
        used_by="lab 01",
        folder=lambda base: base / DOWNLOADS,
        ready=partial(find_photo_folder, FLOWERS_FOLDER),
        prepare=_prepare_flowers,
    ),
    "mnist": Source(
        name="mnist",
        title="MNIST subset",
        files=tuple(
            Remote(file_name, tuple(mirror + file_name for mirror in MNIST.mirrors), "md5", md5)
            for file_name, md5 in MNIST.resources
        ),
        used_by="labs 02 and 03",
        folder=lambda base: base / DOWNLOADS / "mnist",
        ready=lambda base: find_mnist_subset(base)[0],
        prepare=_prepare_mnist,
    ),
}


def sources_table(root: str | os.PathLike | None = None) -> str:
    """One line per source: its name, what it is, who reads it, and whether it is there."""
    base = data_root(root)
    lines = []
    for source in SOURCES.values():
        try:
            found = source.ready(base)
        except FetchError:
            found = None
        state = f"at {shown_path(found)}" if found is not None else "not here"
        lines.append(f"  {source.name:<14} {source.title} ({source.used_by}): {state}")
    return "labkit fetch NAME brings one of:\n" + "\n".join(lines)
