"""Submissions as handed in: read into memory, the notebook picked, originals kept intact.

Every file of a submissions folder is read into memory before anything runs. Kernels only ever
see scratch copies; after each submission the originals are compared byte for byte with what
was read and restored (bytes, mode, modification time) where a student's code changed them.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labkit.atomic import write_bytes_atomic
from labkit.grading.authoring.locate import locate
from labkit.grading.authoring.protocol import LabSpec
from labkit.grading.reports.results import Status


@dataclass
class Original:
    """One file handed in, as it was: restored from here if a student's code touches it."""

    path: Path
    data: bytes
    mode: int
    mtime_ns: int
    owner: str
    owner_note: str = ""

    def intact(self) -> bool:
        """The file is there with the bytes it was read with (False when it cannot be read)."""
        try:
            return self.path.is_file() and self.path.read_bytes() == self.data
        except OSError:  # unreadable now counts as changed: it is restored
            return False

    def restore(self) -> None:
        """Write the file back as it was; OSError when that fails."""
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        write_bytes_atomic(self.path, self.data)
        os.chmod(self.path, self.mode & 0o7777)
        os.utime(self.path, ns=(self.mtime_ns, self.mtime_ns))


@dataclass
class Entry:
    """One student: a file or a folder of the submissions folder, with its bytes in memory."""

    student: str
    path: Path
    files: dict[Path, bytes]  # relative to the working folder (the file's own name for a file)
    unreadable: list[str] = field(default_factory=list)  # files that could not be read, and why


def read_entries(items: list[Path]) -> tuple[list[Entry], list[Original]]:
    """Each item (a file or a folder) as one student (file stem or folder name), in memory."""
    stems = [p.stem if p.is_file() else p.name for p in items]
    entries, originals = [], []
    for item, stem in zip(items, stems, strict=True):
        student = stem if stems.count(stem) == 1 else item.name
        entry = Entry(student, item, {})
        paths = [item] if not item.is_dir() else sorted(p for p in item.rglob("*") if p.is_file())
        for path in paths:
            rel = Path(path.name) if path == item else path.relative_to(item)
            try:
                data, stat = path.read_bytes(), path.stat()
            except OSError as error:  # a dangling link, no permission: the notes say so
                entry.unreadable.append(f"{rel}: {error.strerror or error}")
                continue
            entry.files[rel] = data
            originals.append(Original(path, data, stat.st_mode, stat.st_mtime_ns, student))
        entries.append(entry)
    return entries, originals


def _lab_of(data: bytes) -> str | None:
    try:
        meta = json.loads(data).get("metadata", {})
        return meta.get("labkit", {}).get("lab")
    except (ValueError, AttributeError):
        return None


def pick_notebook(entry: Entry, spec: LabSpec, solutions_name: str) -> tuple[Path | None, str]:
    """The notebook of a folder submission (same name as the solutions', else the lab's, else
    the first), with a note when there was a choice."""
    candidates = sorted(
        (
            p
            for p in entry.files
            if p.suffix == ".ipynb" and not any(part.startswith(".") for part in p.parts)
        ),
        key=lambda p: (len(p.parts), str(p)),
    )
    if not candidates:
        return None, ""
    chosen = next((p for p in candidates if p.name == solutions_name), None)
    chosen = chosen or next(
        (p for p in candidates if spec.lab and _lab_of(entry.files[p]) == spec.lab), None
    )
    chosen = chosen or candidates[0]
    note = (
        f"{len(candidates)} notebooks in the folder; graded {chosen}" if len(candidates) > 1 else ""
    )
    return chosen, note


def read_notebook(data: bytes, spec: LabSpec) -> tuple[Status | None, dict | None]:
    """`(status, notebook)`: status None when the notebook can be graded."""
    if not data.strip():
        return Status.EMPTY, None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # invalid JSON, not nbformat, not UTF-8: any reason means the same
        return Status.NOT_A_NOTEBOOK, None
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("source", ""), str) for c in cells
    ):
        return Status.NOT_A_NOTEBOOK, None
    if not cells:
        return Status.EMPTY, None
    meta = nb.get("metadata", {})
    lab = meta.get("labkit", {}).get("lab") if isinstance(meta.get("labkit"), dict) else None
    if spec.lab and lab and lab != spec.lab:
        return Status.OTHER_LAB, nb
    located = locate(nb, spec)
    if not located.found_any:
        return (Status.OTHER_LAB if located.other_ids else Status.NO_QUESTIONS), nb
    return None, nb


def verify(originals: list[Original], lock: threading.Lock) -> set[str]:
    """Restore every original a student's code changed or deleted; the owners affected."""
    touched = set()
    with lock:
        for original in originals:
            if not original.intact():
                try:
                    original.restore()
                except OSError as error:  # keep grading; the owner's notes say it
                    original.owner_note = f"could not restore {original.path}: {error}"
                touched.add(original.owner)
    return touched
