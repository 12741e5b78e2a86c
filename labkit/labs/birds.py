"""Settings and data loading shared by the bird labs (01's fine-tuning, 04 and 05).

The synthetic birds' size per profile lives here, so that every bird lab of one profile shares
one written set: `smoke` a few seconds of images, `cpu` a set a laptop trains on in minutes,
`full` a larger set for a GPU (and for the CPU baselines in RESULTS.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from labkit.data.birds import load_birds, load_source_birds
from labkit.data.datasets import LabData
from labkit.data.synthbirds import SynthBirdsSpec
from labkit.labs.settings import LabSettings, shown

__all__ = ["SOURCE_BIRDS", "SYNTHETIC_BIRDS", "BirdsSettings", "load_lab_birds", "load_lab_source"]

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
    eval_batch_size: int = 64
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
