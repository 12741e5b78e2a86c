"""Settings and data loading shared by the digit labs (02 and 03).

Used in: labkit.labs.densenet_resnext, labkit.labs.facenet_knn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from torch.utils.data import DataLoader

from labkit.data.digits import DigitsData, load_digits_data, make_loaders
from labkit.labs.settings import LabSettings, rehearse_as, shown

__all__ = ["DigitsSettings", "digit_loaders", "load_digits"]


@dataclass(frozen=True)
class DigitsSettings(LabSettings):
    """The data half of a digit lab's settings."""

    # the built-in scans are 8x8 enlarged, so 16 px loses nothing of them; MNIST is 28 px
    image_size: int = field(default=32, metadata=shown("images {}px"))
    train_per_class: int | None = field(
        default=None,
        metadata={**shown("train {}/class", none="all training images"), **rehearse_as(4)},
    )
    # cap on test images per class; None keeps all
    test_per_class: int | None = field(default=None, metadata=rehearse_as(2))
    # batch of evaluation and embedding passes
    eval_batch_size: int = field(default=256, metadata=rehearse_as(2))
    num_workers: int = 0  # DataLoader workers; 0 keeps everything in the notebook's process


def load_digits(
    settings: DigitsSettings, root: str | os.PathLike | None = None, verbose: bool = True
) -> DigitsData:
    """The digits at the settings' image size and caps (see `labkit.data.load_digits_data`)."""
    return load_digits_data(
        image_size=settings.image_size,
        train_per_class=settings.train_per_class,
        test_per_class=settings.test_per_class,
        root=root,
        verbose=verbose,
    )


def digit_loaders(
    data: DigitsData, settings: DigitsSettings, batch_size: int, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader) of `batch_size` and the settings' evaluation batch and
    workers, training shuffled by `seed` (see `labkit.data.make_loaders`)."""
    return make_loaders(
        data,
        batch_size=batch_size,
        eval_batch_size=settings.eval_batch_size,
        num_workers=settings.num_workers,
        seed=seed,
    )
