"""The first cell of every lab: which lab, which profile, which device, one printed line each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from labkit.config import device, run_dir, seed_everything
from labkit.labs.settings import LabSettings

SMOKE_LINE = (
    "smoke profile: a seconds-long check for CI; its numbers mean nothing "
    "(LABKIT_PROFILE=cpu gives meaningful ones in minutes)"
)
MEANINGS = {  # what each profile's numbers are good for, one line each
    "smoke": "a seconds-long check for CI: the notebook runs, its numbers mean nothing",
    "cpu": "meaningful numbers in minutes on a laptop CPU; the model answers quote this profile",
    "full": "the handout's settings, for a GPU; model answers give its numbers in [brackets]",
}
SWITCH_LINE = (
    "switch: set LABKIT_PROFILE=smoke, cpu or full before starting Jupyter, or pass the profile "
    'to start(), e.g. start("cpu")'
)


@dataclass(frozen=True)
class Lab:
    """What a lab notebook runs with: its name, settings (for one profile), device and seed."""

    name: str
    settings: LabSettings
    device: torch.device
    seed: int = 0

    @property
    def profile(self) -> str:
        """The profile's name: smoke, cpu or full."""
        return self.settings.profile

    def run_dir(self, run: str) -> Path:
        """The folder of one model's runs in this lab and profile (see `labkit.config.run_dir`);
        pass it to `labkit.training.callbacks.Checkpoints(..., per_settings=True)`."""
        return run_dir(self.name, self.profile, run)


def _device_line(dev: torch.device, profile: str) -> str:
    """One line naming the device, with advice when the full profile meets a CPU."""
    if dev.type == "cuda":
        return f"device: cuda ({torch.cuda.get_device_name(dev)})"
    line = f"device: {dev.type}"
    if profile == "full":
        line += " (no CUDA GPU: the full profile will be slow; LABKIT_PROFILE=cpu runs in minutes)"
    return line


def start_lab(name: str, teaches: str, settings: LabSettings, *, seed: int = 0) -> Lab:
    """Seed everything, pick the device, and print what the lab teaches and runs on.

    Prints one line each: lab, profile (with the sizes its settings show), what the profile's
    numbers mean, how to switch, device; the smoke profile first prints a line saying its
    numbers mean nothing.

    Used in: every lab module's `start` (the first code cell of every lab).
    """
    dev = device()
    seed_everything(seed)
    if settings.profile == "smoke":
        print(SMOKE_LINE)
    print(f"lab: {name}: {teaches}")
    print(settings.summary())
    print(f"meaning: {MEANINGS.get(settings.profile, 'a profile of your own')}")
    print(SWITCH_LINE)
    print(_device_line(dev, settings.profile))
    return Lab(name=name, settings=settings, device=dev, seed=seed)
