"""Settings, data loading and the training stage shared by the bird labs (01, 04 and 05).

The synthetic birds' size per profile lives here, so that every bird lab of one profile shares
one written set: `smoke` a few seconds of images, `cpu` a set a laptop trains on in minutes,
`full` a larger set for a GPU (and for the CPU baselines in RESULTS.md). `train_stage` trains
one network for one stage of any of them (pretraining, a head, fine-tuning, OPAM's networks);
`early_stopping_note` says which epoch its early stopping kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from torch import nn
from torch.utils.data import Dataset

from labkit.data.birds import load_birds, load_source_birds
from labkit.data.datasets import LabData
from labkit.data.synthbirds import SynthBirdsSpec
from labkit.labs.settings import LabSettings, rehearse_as, shown
from labkit.training import distributed
from labkit.training.callbacks import Checkpoints, ProgressBar
from labkit.training.loaders import seeded_loader
from labkit.training.loop import fit
from labkit.training.recipe import Recipe

__all__ = [
    "SOURCE_BIRDS",
    "SYNTHETIC_BIRDS",
    "BirdsSettings",
    "early_stopping_note",
    "load_lab_birds",
    "load_lab_source",
    "train_stage",
]

# (classes, train + test images per class, image size); the source task has its own species
SYNTHETIC_BIRDS = {
    "smoke": SynthBirdsSpec(num_classes=4, train_per_class=6, test_per_class=3, image_size=64),
    "cpu": SynthBirdsSpec(num_classes=20, train_per_class=40, test_per_class=20, image_size=128),
    "full": SynthBirdsSpec(num_classes=50, train_per_class=60, test_per_class=30, image_size=256),
}
SOURCE_BIRDS = {
    profile: SynthBirdsSpec(
        num_classes=spec.num_classes,
        train_per_class=spec.train_per_class,
        test_per_class=spec.test_per_class,
        image_size=spec.image_size,
        task="source",
    )
    for profile, spec in SYNTHETIC_BIRDS.items()
}


@dataclass(frozen=True)
class BirdsSettings(LabSettings):
    """The data half of a bird lab's settings."""

    resize: int = field(default=128, metadata=shown("resized to {}px"))  # short side
    crop: int = field(default=112, metadata=shown("{}px crops"))
    crop_to_box: bool = False  # crop each image to its bounding box first
    synthetic: SynthBirdsSpec = SYNTHETIC_BIRDS["cpu"]  # used when CUB-200-2011 is absent
    source: SynthBirdsSpec = SOURCE_BIRDS["cpu"]  # for pretraining without ImageNet weights
    eval_batch_size: int = field(default=64, metadata=rehearse_as(2))
    num_workers: int = 0  # DataLoader workers; 0 keeps everything in the notebook's process

    def builtin_birds(self) -> tuple[SynthBirdsSpec, ...]:
        """The lab's synthetic species and the source species, each written once under the
        data folder (see `LabSettings.builtin_birds`)."""
        return tuple(dict.fromkeys((self.synthetic, self.source)))


def load_lab_birds(
    settings: BirdsSettings,
    with_geometry: bool = False,
    root: str | os.PathLike | None = None,
    verbose: bool = True,
) -> LabData:
    """The lab's birds at the settings' sizes (see `labkit.data.load_birds`)."""
    return load_birds(
        resize=settings.resize,
        crop=settings.crop,
        synthetic=settings.synthetic,
        crop_to_box=settings.crop_to_box,
        with_geometry=with_geometry,
        root=root,
        verbose=verbose,
    )


def load_lab_source(
    settings: BirdsSettings, root: str | os.PathLike | None = None, verbose: bool = True
) -> LabData:
    """The source-task species at the settings' sizes (see `labkit.data.load_source_birds`)."""
    return load_source_birds(
        resize=settings.resize,
        crop=settings.crop,
        synthetic=settings.source,
        root=root,
        verbose=verbose,
    )


def train_stage(
    model: nn.Module,
    recipe: Recipe,
    train_set: Dataset,
    val_set: Dataset,
    settings: BirdsSettings,
    *,
    runs_dir: str | os.PathLike | None = None,
    run_info: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str | None = None,
) -> pd.DataFrame:
    """One network trained for one stage through `labkit.training.loop.fit`, as `recipe` says
    (optimiser over the parameters that require gradients, schedule, epochs, accumulation,
    early stopping on `val_set`, the best or the last epoch kept): training batches of
    `recipe.batch_size` shuffled by `seed`, validation batches of `settings.eval_batch_size`,
    the settings' workers (`labkit.training.loaders.seeded_loader`). With `runs_dir` the stage
    is checkpointed in a folder keyed by its settings, `run_info` and the seed: a finished stage
    only loads. Under torchrun the model is wrapped in DistributedDataParallel and each process
    reads its share.

    Returns fit's history, one row per epoch.

    Used in: labs 01 (pretraining, fine-tuning), 04 (pretraining, stages 1 and 2), 05 (its
    pretraining and networks).
    """
    workers = settings.num_workers
    loaders = (
        seeded_loader(train_set, recipe.batch_size, shuffle=True, seed=seed, num_workers=workers),
        seeded_loader(val_set, settings.eval_batch_size, shuffle=False, seed=seed,
                      num_workers=workers),
    )  # fmt: skip
    callbacks = [
        ProgressBar(desc, enabled=progress),
        Checkpoints(runs_dir, per_settings=True, info={"seed": seed, **(run_info or {})}),
    ]
    return fit(distributed.wrap(model), loaders, recipe, callbacks=callbacks)


def early_stopping_note(history: pd.DataFrame) -> str:
    """Which epoch's weights early stopping kept (the best validation accuracy, the first of
    equals), and, when that is epoch 1 of a curve that went down and up again after it, that
    the network kept is the one after a single epoch."""
    acc = history["val_acc"].to_numpy()
    best = int(acc.argmax())
    later = acc[best + 1 :]
    note = f"early stopping kept epoch {best + 1} of {len(acc)} ({acc[best]:.1%} on validation)"
    steps = later[1:] - later[:-1]
    if best == 0 and (steps < 0).any() and (steps > 0).any():
        shown = ", ".join(f"{a:.1%}" for a in later)
        note += (
            f": after it the validation accuracy swung ({shown}) without beating it, so the "
            "network kept is the one after a single epoch of fine-tuning"
        )
    elif len(later):
        note += f"; the {len(later)} epochs after it reached {later.max():.1%} at best"
    return note
