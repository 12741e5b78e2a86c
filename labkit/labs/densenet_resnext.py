"""Lab 02, DenseNet and ResNeXt: its settings for each profile and its training recipe.

The handout's recipe is SGD (lr 0.01, momentum 0.9, weight decay 5e-4), batch 64, 20 epochs at
32 px; `full` keeps it, with a cosine schedule so that the last epoch's accuracy is stable. The
`cpu` profile trains at 16 px (the built-in scans are 8x8 enlarged, so nothing is lost) for 10
epochs with a one-cycle schedule, which reaches the same accuracy class in minutes on a laptop.

Used in: 02_densenet_resnext.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from labkit.labs.digits import DigitsSettings
from labkit.labs.session import Lab, start_lab
from labkit.labs.settings import choose, shown

__all__ = [
    "LAB",
    "PROFILES",
    "SCHEDULES",
    "Settings",
    "optimizer_and_scheduler",
    "settings",
    "start",
]

LAB = "02_densenet_resnext"
TEACHES = "DenseNet and ResNeXt: build, count layers, train, compare"
SCHEDULES = ("cosine", "one_cycle")


@dataclass(frozen=True)
class Settings(DigitsSettings):
    """Every size and rate lab 02 uses."""

    batch_size: int = field(default=64, metadata=shown("batch {}"))  # the handout's 64
    num_epochs: int = field(default=20, metadata=shown("{} epochs"))  # the handout's 20
    lr: float = field(default=0.01, metadata=shown("lr {}"))  # SGD rate (one-cycle: its peak)
    momentum: float = 0.9  # the handout's
    weight_decay: float = 5e-4  # the handout's
    schedule: str = field(default="cosine", metadata=shown("{} schedule"))  # one of SCHEDULES

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`) and that the schedule is one of SCHEDULES."""
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")


PROFILES = {
    "full": Settings(profile="full"),
    "cpu": Settings(profile="cpu", image_size=16, num_epochs=10, lr=0.02, schedule="one_cycle"),
    "smoke": Settings(
        profile="smoke",
        image_size=16,
        train_per_class=10,
        test_per_class=10,
        batch_size=32,
        num_epochs=2,
    ),
}


def settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Lab 02's settings for `profile` (default: chosen as `labkit.config.profile_name`), with
    single fields overridden, e.g. `settings("full", num_epochs=5)`."""
    return choose(PROFILES, profile, overrides)


def start(profile: str | None = None, *, seed: int = 0, **overrides: Any) -> Lab:
    """The first cell of lab 02: seed, choose settings and device, print one line each."""
    return start_lab(LAB, TEACHES, settings(profile, **overrides), seed=seed)


def optimizer_and_scheduler(
    model: nn.Module, settings: Settings
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
    """The lab's recipe: the handout's SGD, and the profile's learning-rate schedule.

    Both schedules are stepped once per epoch (by `labkit.training.loop.fit`): `cosine` decays from
    `lr` to zero over the run; `one_cycle` warms up from lr / 25 to `lr` over 30% of
    the epochs, then anneals to nearly zero; momentum stays at `momentum` (OneCycleLR would
    otherwise cycle it between 0.85 and 0.95). `Settings` refuses any other schedule name.
    """
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    if settings.schedule == "cosine":  # the settings accept no other name than SCHEDULES
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.num_epochs)
    else:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(  # momentum stays the setting's
            optimizer, max_lr=settings.lr, total_steps=settings.num_epochs, cycle_momentum=False
        )
    return optimizer, scheduler
