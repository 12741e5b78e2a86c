"""The built-in data sets every lab falls back to when the real data is absent, by name.

Each is written once under `<data root>/builtin/` by the code that first needs it. The grader
writes them all before sandboxed kernels start, because the sandbox shares the data folder
read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from labkit.data.digits import write_builtin_digits
from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds

BUILTIN_WRITERS: dict[str, Callable[[Path], Path]] = {"digits": write_builtin_digits}


def write_builtin_data(root: Path, birds: Iterable[SynthBirdsSpec] = ()) -> list[Path]:
    """Write every built-in data set under `root/builtin` (complete ones are left untouched):
    the digits, and the synthetic birds of each spec in `birds` (a profile's lab and source
    sets, `labkit.labs.birds`), each in `root/builtin/<spec.folder_name>`.

    Returns the folders; OSError when `root` cannot be written.
    """
    folders = [write(Path(root) / "builtin" / name) for name, write in BUILTIN_WRITERS.items()]
    for spec in birds:
        folders.append(write_synthetic_birds(Path(root) / "builtin" / spec.folder_name, spec))
    return folders
