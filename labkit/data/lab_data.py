"""The one kind of object every data set by name returns: train and test splits, class names,
and where the images came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset


@dataclass(frozen=True)
class LabData:
    """A lab's data set: its train and test splits, with where they came from.

    Attributes:
        train, test: map-style datasets of `(image, label, ...)` items.
        class_names: class `i`'s name at index `i`.
        source: what was found, e.g. "MNIST subset", "CUB-200-2011", "synthetic birds".
        root: the folder the images were read from.
    """

    train: Dataset
    test: Dataset
    class_names: tuple[str, ...]
    source: str
    root: Path

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)
