"""One training recipe for every lab: optimiser, schedule, epochs, batch, accumulation, early
stop; and the one builder of its optimiser and schedule.

A lab's settings hold one `Recipe` per network it trains (lab 02's `training`, lab 04's
`stage1`, ...); `labkit.training.loop.fit` takes it, builds the optimiser and schedule with
`build_optimizer`, and records it as part of the run's identity.

Used in: labkit.training.loop.fit, every lab module's settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import torch

__all__ = ["MONITORS", "OPTIMIZERS", "SCHEDULES", "Recipe", "build_optimizer", "monitor_mode"]

OPTIMIZERS = ("sgd", "adamw")
# constant: no schedule; plateau: /10 after `plateau_patience` epochs without a better monitor
# (VGG's and the HBP authors' recipe); cosine: to zero over the epochs; one_cycle: warm up to
# `lr` over 30% of the epochs, then anneal; step: times `step_gamma` every `step_every` epochs
SCHEDULES = ("constant", "plateau", "cosine", "one_cycle", "step")
MONITORS = ("val_acc", "val_loss", "train_acc", "train_loss")


@dataclass(frozen=True)
class Recipe:
    """How one network is trained. The effective batch is `batch_size * accum_steps`.

    Every schedule is stepped once per epoch. Raises TypeError for a field of another type
    than its annotation (an int field refuses a bool or a float; a float field takes an int),
    ValueError for a name that is not one of `OPTIMIZERS`, `SCHEDULES` or `MONITORS`, or a
    count that is not positive.
    """

    num_epochs: int  # passes over the training data (early stopping may end sooner)
    lr: float  # the starting learning rate ("one_cycle": its peak)
    batch_size: int = 64  # examples per micro-batch, what must fit in memory (the caller's loader)
    accum_steps: int = 1  # micro-batches per optimiser step; their gradients add up
    optimizer: str = "sgd"  # one of OPTIMIZERS
    momentum: float = 0.9  # SGD's momentum (AdamW's first beta)
    weight_decay: float = 0.0  # L2 penalty on every trained parameter, applied by the optimiser
    schedule: str = "constant"  # one of SCHEDULES
    plateau_patience: int = 3  # "plateau": epochs without a better monitor before the rate /10
    step_every: int = 1  # "step": epochs between two changes of the rate
    step_gamma: float = 0.1  # "step": the factor of each change
    patience: int | None = None  # stop after this many epochs without a better monitor; None: never
    monitor: str = "val_acc"  # what early stopping, "plateau" and the best epoch watch
    restore_best: bool = False  # end with the best epoch's weights instead of the last's
    label_smoothing: float = 0.0  # of the default loss, cross-entropy
    # a rehearsal's caps (`labkit run --rehearse`): optimiser steps an epoch and validation
    # batches an epoch; None: the whole loader
    max_steps: int | None = None
    max_eval_batches: int | None = None

    def __post_init__(self) -> None:
        """Check the types, names and counts, so that a bad override fails where it is made."""
        hints = get_type_hints(type(self))
        for f in fields(self):
            value, options = getattr(self, f.name), hints[f.name]
            options = get_args(options) if get_origin(options) in (Union, UnionType) else (options,)
            if not any(_is(value, option) for option in options):
                names = " or ".join("None" if o is type(None) else o.__name__ for o in options)
                raise TypeError(
                    f"Recipe setting {f.name}={value!r} should be {names}, "
                    f"not {type(value).__name__}"
                )
        for name in ("num_epochs", "accum_steps", "batch_size", "plateau_patience", "step_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("patience", "max_steps", "max_eval_batches"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be None or a positive int, got {getattr(self, name)!r}"
                )
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("monitor", MONITORS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {choices}")

    @property
    def effective_batch(self) -> int:
        """Examples per optimiser step."""
        return self.batch_size * self.accum_steps


def _is(value: Any, option: Any) -> bool:
    if isinstance(value, bool):
        return option is bool
    if option is float:
        return isinstance(value, (int, float))
    return isinstance(value, option)


def monitor_mode(monitor: str) -> str:
    """ "min" for a loss, "max" for an accuracy."""
    return "min" if monitor.endswith("loss") else "max"


def build_optimizer(
    recipe: Recipe, parameters: Iterable[torch.nn.Parameter]
) -> tuple[torch.optim.Optimizer, Any]:
    """The recipe's optimiser over the `parameters` that require gradients, and its scheduler
    (None for "constant"), both as `labkit.training.loop.fit` steps them: once per epoch.

    "one_cycle" keeps the momentum at the recipe's (OneCycleLR would cycle it between 0.85
    and 0.95); "plateau" watches the recipe's monitor, in the direction it improves.
    """
    trained = [p for p in parameters if p.requires_grad]
    if recipe.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            trained, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(
            trained, lr=recipe.lr, betas=(recipe.momentum, 0.999), weight_decay=recipe.weight_decay
        )
    schedules = torch.optim.lr_scheduler
    if recipe.schedule == "plateau":
        mode = monitor_mode(recipe.monitor)
        scheduler = schedules.ReduceLROnPlateau(
            optimizer, mode=mode, factor=0.1, patience=recipe.plateau_patience
        )
    elif recipe.schedule == "cosine":
        scheduler = schedules.CosineAnnealingLR(optimizer, T_max=recipe.num_epochs)
    elif recipe.schedule == "one_cycle":
        scheduler = schedules.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=recipe.num_epochs, cycle_momentum=False
        )
    elif recipe.schedule == "step":
        scheduler = schedules.StepLR(optimizer, recipe.step_every, gamma=recipe.step_gamma)
    else:
        scheduler = None
    return optimizer, scheduler
