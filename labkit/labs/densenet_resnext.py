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

from labkit.config import seed_everything
from labkit.labs.digits import DigitsSettings, digit_loaders, load_digits
from labkit.labs.session import LabEntry
from labkit.labs.settings import shown_fields
from labkit.models import count_layers, count_parameters, densenet_bc, densenet_channels, resnext
from labkit.models.diagrams import draw_dense_block, draw_resnext_forms
from labkit.plots import plot_history, plot_image_grid
from labkit.report import show_headline
from labkit.training.callbacks import Checkpoints, ProgressBar
from labkit.training.loop import fit
from labkit.training.memory import step_memory
from labkit.training.recipe import Recipe

__all__ = [  # what 02_densenet_resnext uses, and nothing else
    "Checkpoints",
    "ProgressBar",
    "count_layers",
    "count_parameters",
    "densenet_bc",
    "densenet_channels",
    "digit_loaders",
    "draw_dense_block",
    "draw_resnext_forms",
    "fit",
    "load_digits",
    "plot_history",
    "plot_image_grid",
    "resnext",
    "seed_everything",
    "show_headline",
    "start",
    "step_memory",
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


ENTRY = LabEntry(LAB, TEACHES, PROFILES)
settings, start = ENTRY.settings, ENTRY.start  # settings("full", training={"num_epochs": 5})
