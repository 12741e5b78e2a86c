"""Every lab's data by name, each a `LabData`, so that a lab never builds a path itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.data.birds import load_birds, load_source_birds
from labkit.data.lab_data import LabData
from labkit.data.loaders import load_digits_data
from labkit.data.photo_folder import load_photo_folder

LOADERS: dict[str, Callable[..., LabData]] = {
    "digits": load_digits_data,  # the MNIST subset, else the built-in digits (labs 02, 03)
    "birds": load_birds,  # CUB-200-2011, else the synthetic birds (labs 01, 04, 05)
    "source birds": load_source_birds,  # synthetic species for pretraining a backbone
    "photo folder": load_photo_folder,  # class sub-folders, e.g. flower_photos (lab 01)
}


def load_data(name: str, *args: Any, **kwargs: Any) -> LabData:
    """The data set called `name`, loaded with its loader's arguments (see LOADERS).

    Raises ValueError naming the known names for an unknown one.
    """
    if name not in LOADERS:
        raise ValueError(f"no data set called {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](*args, **kwargs)
