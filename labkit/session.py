"""The first cell of every lab: which lab, which profile, which device, one printed line each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from labkit.config import Profile, device, get_profile, run_dir, seed_everything


@dataclass(frozen=True)
class Lab:
    """What a lab notebook runs with: its name, profile, device and seed."""

    name: str
    profile: Profile
    device: torch.device
    seed: int = 0

    def run_dir(self, run: str) -> Path:
        """The checkpoint folder of one training run of this lab (see `labkit.config.run_dir`)."""
        return run_dir(self.name, self.profile, run)


def _device_line(dev: torch.device, profile: Profile) -> str:
    """One line naming the device, with advice when a full profile meets a CPU."""
    if dev.type == "cuda":
        return f"device: cuda ({torch.cuda.get_device_name(dev)})"
    line = f"device: {dev.type}"
    if profile.name == "full":
        line += (
            " (no CUDA GPU: the full profile will be slow; LABKIT_PROFILE=smoke runs in minutes)"
        )
    return line


def start_lab(
    name: str,
    teaches: str,
    *,
    profile: str | Profile | None = None,
    seed: int = 0,
    sizes: Sequence[str] = ("num_epochs", "batch_size"),
) -> Lab:
    """Seed everything, pick profile and device, and print what the lab teaches and runs on.

    `sizes` names the profile fields the lab's profile line shows (see `Profile.summary`).

    Used in: the first code cell of every lab.
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    dev = device()
    seed_everything(seed)
    print(f"lab: {name}: {teaches}")
    print(chosen.summary(sizes))
    print(_device_line(dev, chosen))
    return Lab(name=name, profile=chosen, device=dev, seed=seed)
