"""The first cell of every lab: which lab, which profile, which device, one printed line each.

A lab module names itself once, `ENTRY = LabEntry(LAB, TEACHES, PROFILES)`, and takes its
`settings` and `start` from it: `settings, start = ENTRY.settings, ENTRY.start`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from labkit.config import device, run_dir, seed_everything
from labkit.labs.settings import LabSettings, choose
from labkit.training.memory import fit_micro_batch

__all__ = [
    "MEANINGS",
    "REHEARSAL_LINE",
    "SMOKE_LINE",
    "Lab",
    "LabEntry",
    "fit_to_memory",
    "start_lab",
]

S = TypeVar("S", bound=LabSettings)

SMOKE_LINE = (
    "smoke profile: a seconds-long check for CI; its numbers mean nothing "
    "(LABKIT_PROFILE=cpu gives meaningful ones in minutes)"
)
REHEARSAL_LINE = (
    "rehearsal: the {profile} profile's models and image sizes with a couple of steps and images; "
    "its numbers mean nothing (runs under runs/<lab>/{profile}-rehearsal)"
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
class Lab(Generic[S]):
    """What a lab notebook runs with: its name, settings (for one profile), device and seed."""

    name: str
    settings: S
    device: torch.device
    seed: int = 0

    @property
    def profile(self) -> str:
        """The profile's name: smoke, cpu or full."""
        return self.settings.profile

    def run_dir(self, run: str) -> Path:
        """The folder of one model's runs in this lab and profile (see `labkit.config.run_dir`);
        pass it to `labkit.training.callbacks.Checkpoints(..., per_settings=True)`. A
        rehearsal's runs live apart, under `<profile>-rehearsal`, never among the profile's."""
        folder = f"{self.profile}-rehearsal" if self.settings.rehearse else self.profile
        return run_dir(self.name, folder, run)


def _device_line(dev: torch.device, profile: str) -> str:
    """One line naming the device, with advice when the full profile meets a CPU."""
    if dev.type == "cuda":
        return f"device: cuda ({torch.cuda.get_device_name(dev)})"
    line = f"device: {dev.type}"
    if profile == "full":
        line += " (no CUDA GPU: the full profile will be slow; LABKIT_PROFILE=cpu runs in minutes)"
    return line


def fit_to_memory(
    settings: S, budget_bytes: float, needs: Mapping[str, tuple[float, float]]
) -> tuple[S, list[str]]:
    """`settings` with each recipe named in `needs` given the largest micro-batch that fits
    `budget_bytes` (`labkit.training.memory.fit_micro_batch`, the effective batch kept), and
    one line for each recipe changed, saying both batches and why.

    Args:
        needs: recipe field -> (fixed bytes, bytes per image) of one of its training steps.
    """
    changes, lines = {}, []
    for field_name, (fixed, per_image) in needs.items():
        recipe = getattr(settings, field_name)
        fitted = fit_micro_batch(recipe, per_image, budget_bytes, fixed_bytes=fixed)
        if fitted != recipe:
            changes[field_name] = fitted
            need = (fixed + recipe.batch_size * per_image) / 2**30
            lines.append(
                f"memory: {field_name} micro-batch {recipe.batch_size} x {recipe.accum_steps} "
                f"steps -> {fitted.batch_size} x {fitted.accum_steps} (the effective batch "
                f"{recipe.effective_batch} kept): {recipe.batch_size} images need {need:.1f} "
                f"GiB, {budget_bytes / 2**30:.1f} GiB free"
            )
    return replace(settings, **changes), lines


def start_lab(name: str, teaches: str, settings: S, *, seed: int = 0) -> Lab[S]:
    """Seed everything, pick the device, and print what the lab teaches and runs on.

    Prints one line each: lab, profile (with the sizes its settings show), what the profile's
    numbers mean, how to switch, device; the smoke profile first prints a line saying its
    numbers mean nothing.

    Used in: every lab module's `start` (`LabEntry.start`, the first code cell of every lab).
    """
    dev = device()
    seed_everything(seed)
    if settings.rehearse:
        print(REHEARSAL_LINE.format(profile=settings.profile))
    elif settings.profile == "smoke":
        print(SMOKE_LINE)
    print(f"lab: {name}: {teaches}")
    print(settings.summary())
    print(f"meaning: {MEANINGS.get(settings.profile, 'a profile of your own')}")
    print(SWITCH_LINE)
    print(_device_line(dev, settings.profile))
    if dev.type == "cuda":  # a micro-batch that fits the card, by the lab's measured step
        free, _ = torch.cuda.mem_get_info(dev)
        settings, lines = fit_to_memory(settings, 0.9 * free, settings.memory_needs(dev))
        print(*lines, sep="\n", end="\n" if lines else "")
        seed_everything(seed)  # the measured steps drew random numbers
    return Lab(name=name, settings=settings, device=dev, seed=seed)


@dataclass(frozen=True)
class LabEntry(Generic[S]):
    """A lab module's name, what it teaches and its settings per profile, with the two calls
    its notebook starts with (`settings` and `start`), written once for every lab."""

    name: str  # the notebook's name, e.g. "04_bcnn_hbp"; its runs live under it
    teaches: str  # one line, printed by `start`
    profiles: Mapping[str, S]  # one frozen settings instance per profile (smoke, cpu, full)

    def settings(
        self, profile: str | None = None, *, rehearse: bool | None = None, **overrides: Any
    ) -> S:
        """The lab's settings for `profile` (default: chosen as `labkit.config.profile_name`),
        with single fields overridden, e.g. `settings("cpu", num_epochs=2)`; a field holding a
        training stage takes a dict of its changes (see `labkit.labs.settings.choose`). With
        `rehearse` (default: `$LABKIT_REHEARSE`) a rehearsal's (`LabSettings.rehearsal`).

        Raises:
            ValueError: an unknown profile or field name, or a value the settings refuse.
            TypeError: a value of the wrong type.
        """
        return choose(self.profiles, profile, overrides, rehearse=rehearse)

    def start(
        self,
        profile: str | None = None,
        *,
        seed: int = 0,
        rehearse: bool | None = None,
        **overrides: Any,
    ) -> Lab[S]:
        """The first cell of the lab: seed, choose settings (`settings(profile, **overrides)`)
        and device, print one line each (see `start_lab`)."""
        chosen = self.settings(profile, rehearse=rehearse, **overrides)
        return start_lab(self.name, self.teaches, chosen, seed=seed)
