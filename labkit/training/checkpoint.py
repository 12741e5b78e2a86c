"""Atomic checkpoint files and the random-number-generator state that makes a resume exact.

Everything saved here is plain state (tensors, numbers, strings, lists, dicts), so
`torch.load(path, weights_only=True)` reads it back without unpickling any object.

Used in: labkit.training.callbacks.Checkpoints (`last.pt`, `best.pt`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.atomic import write_atomic


def save_atomic(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `state` with `torch.save` so that `path` holds either the old file or the new one.

    See `labkit.atomic.write_atomic`: on any error `path` is untouched.
    """
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_atomic` onto the CPU, with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train with checkpoint_dir= to write one")
    # CPU first: RNG states must stay CPU tensors; load_state_dict moves weights to the model.
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's (CPU and every CUDA device) generators."""
    version, keys, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": {"version": version, "keys": list(keys), "gauss_next": gauss_next},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by `rng_state`; CUDA states only when the device count matches."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["keys"]), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["name"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
