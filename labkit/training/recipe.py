"""One training stage of a bird lab (pretraining, a head on a frozen backbone, fine-tuning):
its sizes and rates, and the SGD optimizer and schedule it asks for.

Used by the lab modules of 01 (pretraining and fine-tuning a VGG) and 04 (two-stage bilinear
training); library modules never see a `Stage`, only the optimizer and scheduler built here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from labkit.training.loop import fit

__all__ = ["SCHEDULES", "Stage", "fit_stage", "stage_optimizer"]

SCHEDULES = ("plateau", "cosine")


@dataclass(frozen=True)
class Stage:
    """One training stage: SGD with momentum and a schedule, early stopping on the validation
    accuracy. The effective batch is `batch_size * accum_steps`.

    Schedules: "plateau" divides the rate by 10 after `plateau_patience` epochs without a
    better validation accuracy (VGG's and the HBP authors' recipe); "cosine" decays it to zero
    over `num_epochs` (labkit's pretraining on the source species, a fixed budget).
    """

    num_epochs: int
    batch_size: int  # images per micro-batch (what must fit in memory)
    accum_steps: int  # micro-batches per optimizer step
    lr: float
    weight_decay: float
    momentum: float = 0.9
    plateau_patience: int = 3  # epochs without improvement before the rate drops 10x
    patience: int | None = None  # epochs without improvement before stopping
    schedule: str = "plateau"  # one of SCHEDULES
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")

    @property
    def effective_batch(self) -> int:
        """Images per optimizer step."""
        return self.batch_size * self.accum_steps


def stage_optimizer(
    stage: Stage, parameters: Iterable[torch.nn.Parameter]
) -> tuple[torch.optim.Optimizer, Any]:
    """SGD over the `parameters` that require gradients, with the stage's rate, momentum and
    weight decay, and its scheduler (stepped once per epoch by `labkit.training.loop.fit`)."""
    optimizer = torch.optim.SGD(
        [p for p in parameters if p.requires_grad],
        lr=stage.lr,
        momentum=stage.momentum,
        weight_decay=stage.weight_decay,
    )
    if stage.schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.1, patience=stage.plateau_patience
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=stage.num_epochs)
    return optimizer, scheduler


def fit_stage(
    model: nn.Module,
    stage: Stage,
    train_loader: Iterable,
    val_loader: Iterable,
    *,
    parameters: Iterable[torch.nn.Parameter],
    runs_dir: str | os.PathLike | None,
    run_info: Mapping[str, Any],
    progress: bool,
    desc: str | None,
    restore_best: bool = True,
) -> pd.DataFrame:
    """One stage through `labkit.training.loop.fit`: SGD over `parameters` (`stage_optimizer`), the
    stage's epochs, accumulation and label smoothing, early stopping on the validation accuracy,
    the best epoch's weights kept (with `restore_best=False` the last epoch's: the validation
    images then choose nothing); with `runs_dir`, a finished run only loads.

    Returns fit's history, one row per epoch.
    """
    optimizer, scheduler = stage_optimizer(stage, parameters)
    return fit(
        model,
        train_loader,
        val_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        num_epochs=stage.num_epochs,
        accum_steps=stage.accum_steps,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=stage.label_smoothing),
        patience=stage.patience,
        monitor="val_acc",
        restore_best=restore_best,
        runs_dir=runs_dir,
        run_info=run_info,
        progress=progress,
        desc=desc,
    )
