"""What every lab shares: the profile names and how one is chosen, the device, seeds, folders.

A lab's own settings (image size, epochs, learning rates) live in its module of the lab layer,
`labkit.labs`, with one instance per profile.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILE_ENV = "LABKIT_PROFILE"
DATA_ENV = "LABKIT_DATA"
RUNS_ENV = "LABKIT_RUNS"

# smoke: CI and nbval, seconds per lab, numbers meaningless; cpu: meaningful numbers in
# minutes on a laptop (the default without a CUDA GPU); full: the handouts' settings (the
# default with one).
PROFILE_NAMES = ("smoke", "cpu", "full")


def profile_name(name: str | None = None) -> str:
    """`name`, else `$LABKIT_PROFILE`, else `full` with a CUDA GPU and `cpu` without.

    Raises:
        ValueError: the name is not one of `PROFILE_NAMES`.
    """
    chosen = name or os.environ.get(PROFILE_ENV) or ("full" if torch.cuda.is_available() else "cpu")
    if chosen not in PROFILE_NAMES:
        raise ValueError(
            f"unknown profile {chosen!r} (from the argument or ${PROFILE_ENV}); "
            f"choose one of {', '.join(PROFILE_NAMES)}"
        )
    return chosen


def device(prefer: str = "auto") -> torch.device:
    """The device to use: `prefer` if given, else cuda, then mps, then cpu."""
    if prefer != "auto":
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (every device) for a repeatable run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _folder(root: str | os.PathLike | None, env: str, name: str) -> Path:
    """`root` if given, else `$env`, else `name/` in the checkout (or in ~/.cache/labkit)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / name
    return Path.home() / ".cache" / "labkit" / name


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` if given, else `$LABKIT_DATA`, else `data/` in the checkout."""
    return _folder(root, DATA_ENV, "data")


def run_dir(lab: str, profile: str, name: str, root: str | os.PathLike | None = None) -> Path:
    """Where a lab keeps the runs of one model: `<runs>/<lab>/<profile>/<name>`.

    `<runs>` is `root` if given, else `$LABKIT_RUNS`, else `runs/` in the checkout. The profile is
    part of the path, so runs of different profiles never mix; within it, `Checkpoints(folder,
    per_settings=True)` keeps each set of settings in a folder of its own.
    """
    return _folder(root, RUNS_ENV, "runs") / lab / profile / name


def shown_path(path: str | os.PathLike) -> str:
    """`path` for a printed line: relative to the working folder when near it, else `...` and
    its last four parts, so that outputs kept in a notebook never show a machine's home."""
    relative = os.path.relpath(path)
    if not relative.startswith(os.path.join(os.pardir, os.pardir, os.pardir)):
        return relative
    tail = Path(path).parts[-4:]
    if tail and tail[0] == Path(path).anchor:  # a short absolute path: "/" would reset the join
        tail = tail[1:]
    return os.path.join("...", *tail)
