"""Lab 02, DenseNet and ResNeXt: its settings for each profile, with its training recipe.

The handout's recipe is SGD (lr 0.01, momentum 0.9, weight decay 5e-4), batch 64, 20 epochs at
32 px; `full` keeps it, with a cosine schedule so that the last epoch's accuracy is stable. The
`cpu` profile trains at 16 px (the built-in scans are 8x8 enlarged, so nothing is lost) for 10
epochs with a one-cycle schedule (a warm-up from lr / 25 to its peak `lr` over 30% of the
epochs, then an anneal to nearly zero, the momentum kept), which reaches the same accuracy
class in minutes on a laptop. Both schedules are stepped once per epoch
(`labkit.training.recipe.build_optimizer`).

Used in: 02_densenet_resnext.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from labkit.labs.digits import DigitsSettings
from labkit.labs.session import Lab, start_lab
from labkit.labs.settings import choose, shown_fields
from labkit.training.recipe import Recipe

__all__ = [
    "LAB",
    "PROFILES",
    "Settings",
    "settings",
    "start",
]

LAB = "02_densenet_resnext"
TEACHES = "DenseNet and ResNeXt: build, count layers, train, compare"

# the handout's SGD (lr 0.01, momentum 0.9, weight decay 5e-4), batch 64 and 20 epochs; the
# cosine schedule is ours
HANDOUT = Recipe(
    num_epochs=20, lr=0.01, batch_size=64, momentum=0.9, weight_decay=5e-4, schedule="cosine"
)


@dataclass(frozen=True)
class Settings(DigitsSettings):
    """Every size and rate lab 02 uses."""

    # how both networks train; override single fields with a dict, e.g.
    # start(training={"num_epochs": 5})
    training: Recipe = field(
        default=HANDOUT,
        metadata=shown_fields(
            batch_size="batch {}", num_epochs="{} epochs", lr="lr {}", schedule="{} schedule"
        ),
    )


PROFILES = {
    "full": Settings(profile="full"),
    "cpu": Settings(
        profile="cpu",
        image_size=16,
        training=replace(HANDOUT, num_epochs=10, lr=0.02, schedule="one_cycle"),
    ),
    "smoke": Settings(
        profile="smoke",
        image_size=16,
        train_per_class=10,
        test_per_class=10,
        training=replace(HANDOUT, batch_size=32, num_epochs=2),
    ),
}


def settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Lab 02's settings for `profile` (default: chosen as `labkit.config.profile_name`), with
    single fields overridden, e.g. `settings("full", training={"num_epochs": 5})`."""
    return choose(PROFILES, profile, overrides)


def start(profile: str | None = None, *, seed: int = 0, **overrides: Any) -> Lab:
    """The first cell of lab 02: seed, choose settings and device, print one line each."""
    return start_lab(LAB, TEACHES, settings(profile, **overrides), seed=seed)
