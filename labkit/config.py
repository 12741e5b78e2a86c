"""Profiles (every size a lab uses), the device, seeds and the data folder."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

PROFILE_ENV = "LABKIT_PROFILE"
DATA_ENV = "LABKIT_DATA"
RUNS_ENV = "LABKIT_RUNS"


@dataclass(frozen=True)
class Profile:
    """Every size a lab uses; `smoke` runs in seconds on a CPU, `full` is the handouts' setting."""

    name: str
    image_size: int = 32  # side of the square images the networks see
    train_per_class: int | None = None  # cap on training images per class; None keeps all
    test_per_class: int | None = None  # cap on test images per class; None keeps all
    batch_size: int = 64  # training batch (the handout's 64)
    eval_batch_size: int = 256  # batch for evaluation and embedding passes
    num_epochs: int = 20  # epochs per training run (the handout's 20)
    lr: float = 0.01  # SGD learning rate (the handout's 0.01)
    momentum: float = 0.9  # SGD momentum (the handout's 0.9)
    weight_decay: float = 5e-4  # L2 penalty (the handout's 5e-4)
    num_workers: int = 0  # DataLoader workers; 0 keeps everything in the notebook's process
    # lab 03 (triplet embeddings); the handout's settings unless noted
    embedding_size: int = 128  # length of an embedding
    alpha: float = 10.0  # embeddings are L2-normalised, then scaled to this norm
    margin: float = 2.0  # triplet loss margin (for embeddings of norm alpha)
    triplets_per_epoch: int = 8000  # random triplets drawn afresh every epoch
    triplet_batch_size: int = 16  # triplets per step (3x as many images)
    triplet_lr: float = 0.008  # SGD learning rate of the embedding network
    triplet_epochs: int = 5  # epochs per embedding run
    lr_step_every: int = 4  # divide the learning rate by 3 after every this many epochs
    # mining batches hold P classes x K images: 48 images, as many as 16 random triplets
    pk_classes: int = 8  # P (ours; the handout's bonus leaves P and K open)
    pk_images: int = 6  # K (ours)
    knn_neighbors: int = 5  # k of the KNN classifier
    val_triplets: int = 1000  # fixed test triplets scored after every epoch (ours)

    def summary(self, sizes: Sequence[str] = ("num_epochs", "batch_size")) -> str:
        """One line naming the profile, its image size and cap, and the fields in `sizes`."""
        cap = "all" if self.train_per_class is None else f"{self.train_per_class}/class"
        shown = [f"images {self.image_size}px", f"train {cap}"]
        for size in sizes:
            if size not in SIZE_LABELS:
                raise ValueError(
                    f"no label for profile field {size!r}; known: {sorted(SIZE_LABELS)}"
                )
            shown.append(SIZE_LABELS[size].format(getattr(self, size)))
        return f"profile: {self.name} ({', '.join(shown)})"


# how `Profile.summary` names a field's value
SIZE_LABELS = {
    "num_epochs": "{} epochs",
    "batch_size": "batch {}",
    "lr": "lr {}",
    "triplet_epochs": "{} epochs",
    "triplets_per_epoch": "{} triplets an epoch",
    "triplet_batch_size": "{} triplets a step",
    "embedding_size": "embedding size {}",
}


PROFILES: dict[str, Profile] = {
    "full": Profile(name="full"),
    "smoke": Profile(
        name="smoke",
        image_size=16,
        train_per_class=10,
        test_per_class=10,
        batch_size=32,
        num_epochs=2,
        triplets_per_epoch=96,
        val_triplets=48,
        triplet_epochs=2,
        lr_step_every=1,
    ),
}


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile called `name`, else `$LABKIT_PROFILE`, else `full` on CUDA and `smoke` otherwise.

    Keyword arguments override single fields, e.g. `get_profile("full", num_epochs=5)`.
    """
    name = name or os.environ.get(PROFILE_ENV) or ("full" if torch.cuda.is_available() else "smoke")
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from the argument or ${PROFILE_ENV}); "
            f"choose one of {sorted(PROFILES)}"
        )
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown profile fields {unknown}; known fields: {sorted(known)}")
    return replace(PROFILES[name], **overrides)


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


def run_dir(lab: str, profile: Profile, name: str, root: str | os.PathLike | None = None) -> Path:
    """Where a lab keeps one training run's checkpoints: `<runs>/<lab>/<profile>/<name>`.

    `<runs>` is `root` if given, else `$LABKIT_RUNS`, else `runs/` in the checkout. The profile is
    part of the path, so a smoke run never resumes from a full run's checkpoint or the reverse.
    """
    return _folder(root, RUNS_ENV, "runs") / lab / profile.name / name
