"""Write a file so that it holds either its old bytes or its new ones, never half of them
(`write_atomic`), and a folder so that it is either absent or complete (`write_once`).

Used in: labkit.training.checkpoint (training checkpoints), labkit.grading (gradebooks, restored
submissions), labkit.data (every data set labkit writes: the built-in digits, the MNIST subset,
the synthetic birds, the resized CUB copy, the photo split).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MARKER",
    "is_complete",
    "read_marker",
    "write_atomic",
    "write_bytes_atomic",
    "write_once",
    "write_text_atomic",
]

MARKER = ".labkit-complete"  # write_once writes it last; it holds the version of what was written


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    On any error the temporary file is removed and `path` is left as it was. The folder is
    created if needed, and on POSIX fsynced after the rename, so the rename itself survives a
    power cut.

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a new file gets the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """`write_atomic` of `data`."""
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """`write_atomic` of `text` as UTF-8, newlines kept as they are."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a folder for fsync.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
