"""The built-in data sets every lab falls back to when the real data is absent, by name.

Each is written once under `<data root>/builtin/<name>` by the code that first needs it. The
grader writes them all before sandboxed kernels start, because the sandbox shares the data
folder read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labkit.data.digits import write_builtin_digits

BUILTIN_WRITERS: dict[str, Callable[[Path], Path]] = {"digits": write_builtin_digits}


def write_builtin_data(root: Path) -> list[Path]:
    """Write every built-in data set under `root/builtin` (complete ones are left untouched).

    Returns the folders; OSError when `root` cannot be written.
    """
    return [write(Path(root) / "builtin" / name) for name, write in BUILTIN_WRITERS.items()]
