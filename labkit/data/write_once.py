"""A folder written once: filled in a hidden sibling folder, a marker holding the version
written last, then renamed into place, so an interrupted write never leaves a folder that looks
complete, and the same version is never written twice.

Used by every data set labkit writes: the built-in digits, the MNIST subset, the synthetic birds,
the resized CUB copy and the photo split.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MARKER = ".labkit-complete"  # written last; holds the version string of what was written


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
