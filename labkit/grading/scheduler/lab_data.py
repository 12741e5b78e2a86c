"""The built-in data a lab's notebook needs, asked of its lab module: the grader's one entry into
`labkit.labs`.

A sandboxed kernel sees the data folder read-only (`sandbox`), so the built-in data sets a lab
falls back to when the real data is absent (`labkit.data.write_builtin_data`) are written
before any kernel starts. Which ones depends on the lab and the profile, and only the lab knows:
the solutions notebook names its lab in its `labkit.lab` metadata (`04_bcnn_hbp`), the lab's
module (`labkit.labs.bcnn_hbp`: the name without its number) gives the profile's settings, and
their `builtin_birds()` names the synthetic bird sets. The built-in digits are always written.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from labkit.data import write_builtin_data
from labkit.data.synthbirds import SynthBirdsSpec

LABS = "labkit.labs"  # the package of the lab modules


def lab_module(lab: str) -> ModuleType | None:
    """The lab module of lab `lab` ("04_bcnn_hbp" -> `labkit.labs.bcnn_hbp`, whose `LAB` is
    "04_bcnn_hbp"); None when labkit has no module for it (a course's own lab).

    Raises ImportError where the lab's module exists but fails to import.
    """
    number, _, name = lab.partition("_")
    if not (number.isdigit() and name.isidentifier()):
        return None
    try:
        module = importlib.import_module(f"{LABS}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{LABS}.{name}":
            raise  # the lab's module is there and imports something missing
        return None
    return module if getattr(module, "LAB", None) == lab else None


def builtin_birds(lab: str | None, profile: str) -> tuple[SynthBirdsSpec, ...]:
    """The synthetic bird sets lab `lab`'s notebook writes in `profile` (its settings'
    `builtin_birds()`); () for a lab without a lab module, or None (a notebook naming no lab)."""
    module = lab_module(lab) if lab else None
    if module is None:
        return ()
    return tuple(module.settings(profile).builtin_birds())


def write_lab_data(lab: str | None, profile: str, root: str | os.PathLike) -> list[Path]:
    """Write under `root` the built-in data lab `lab`'s notebook needs in `profile`: the digits
    and its synthetic birds (complete sets are left untouched). Returns their folders.

    Raises OSError when `root` cannot be written.
    """
    return write_builtin_data(Path(root), birds=builtin_birds(lab, profile))
