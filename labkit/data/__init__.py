"""Datasets by name, each a `LabData` so that a lab never builds a path itself (`load_data`):
the digits (MNIST subset or built-in), the birds (CUB-200-2011 or synthetic), the source-task
birds, a folder of class sub-folders of photos. The built-in sets are written once under
`<data root>/builtin/` by the code that first needs them, or all at once by `write_builtin_data`
(the grader does, before sandboxed kernels start: the sandbox shares the data folder read-only).

Modules: `digits` and `mnist` (labs 02, 03), `birds`, `cub`, `cub_prepare` and `synthbirds`
(labs 01, 04, 05), `photos` (lab 01), `transforms` (normalisations, their inverses,
augmentations), `images` (files decoded as 8-bit RGB), `datasets` (`LabData`,
`TensorImageDataset`); folders are written once through `labkit.atomic.write_once`.
"""

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from labkit.data.birds import (
    BirdTransform,
    CubDataset,
    carve_validation,
    find_cub,
    load_birds,
    load_source_birds,
)
from labkit.data.cub import CubError, CubIndex, check_cub, flip_permutation, read_cub_index
from labkit.data.datasets import LabData, TensorImageDataset, split_by_class
from labkit.data.digits import DigitsData, load_digits_data, make_loaders, write_builtin_digits
from labkit.data.images import decode_image, list_image_folder, open_rgb, read_image_folder
from labkit.data.mnist import make_mnist_subset, read_idx, validate_split_csv, write_split_layout
from labkit.data.photos import (
    CLASS_INDEX_FILE,
    SplitFolders,
    find_photo_folder,
    load_photo,
    load_photo_folder,
    read_class_index,
    split_class_folder,
    synthetic_photo_folder,
    write_class_index,
)
from labkit.data.synthbirds import (
    SynthBirdsSpec,
    species_list,
    synthetic_birds_folder,
    write_synthetic_birds,
)
from labkit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MEAN,
    STD,
    digits_augmentation,
    normalize,
    normalize_imagenet,
    photo_transform,
    scale_jitter,
    to_display,
    to_display_imagenet,
)

LOADERS: dict[str, Callable[..., LabData]] = {
    "digits": load_digits_data,  # the MNIST subset, else the built-in digits (labs 02, 03)
    "birds": load_birds,  # CUB-200-2011, else the synthetic birds (labs 01, 04, 05)
    "source birds": load_source_birds,  # synthetic species for pretraining a backbone
    "photo folder": load_photo_folder,  # class sub-folders, e.g. flower_photos (lab 01)
}
BUILTIN_WRITERS: dict[str, Callable[[Path], Path]] = {"digits": write_builtin_digits}


def load_data(name: str, *args: Any, **kwargs: Any) -> LabData:
    """The data set called `name`, loaded with its loader's arguments (see LOADERS).

    Raises ValueError naming the known names for an unknown one.
    """
    if name not in LOADERS:
        raise ValueError(f"no data set called {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](*args, **kwargs)


def write_builtin_data(root: Path, birds: Iterable[SynthBirdsSpec] = ()) -> list[Path]:
    """Write every built-in data set under `root/builtin` (complete ones are left untouched):
    the digits, and the synthetic birds of each spec in `birds` (a profile's lab and source
    sets, `labkit.labs.birds`), each in `root/builtin/<spec.folder_name>`.

    Returns the folders; OSError when `root` cannot be written.
    """
    folders = [write(Path(root) / "builtin" / name) for name, write in BUILTIN_WRITERS.items()]
    for spec in birds:
        folders.append(write_synthetic_birds(synthetic_birds_folder(root, spec), spec))
    return folders


__all__ = [
    "BUILTIN_WRITERS",
    "CLASS_INDEX_FILE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LOADERS",
    "MEAN",
    "STD",
    "BirdTransform",
    "CubDataset",
    "CubError",
    "CubIndex",
    "DigitsData",
    "LabData",
    "SplitFolders",
    "SynthBirdsSpec",
    "TensorImageDataset",
    "carve_validation",
    "check_cub",
    "decode_image",
    "digits_augmentation",
    "find_cub",
    "find_photo_folder",
    "flip_permutation",
    "list_image_folder",
    "load_birds",
    "load_data",
    "load_digits_data",
    "load_photo",
    "load_photo_folder",
    "load_source_birds",
    "make_loaders",
    "make_mnist_subset",
    "normalize",
    "normalize_imagenet",
    "open_rgb",
    "photo_transform",
    "read_class_index",
    "read_cub_index",
    "read_idx",
    "read_image_folder",
    "scale_jitter",
    "species_list",
    "split_by_class",
    "split_class_folder",
    "synthetic_birds_folder",
    "synthetic_photo_folder",
    "to_display",
    "to_display_imagenet",
    "validate_split_csv",
    "write_builtin_data",
    "write_builtin_digits",
    "write_class_index",
    "write_split_layout",
    "write_synthetic_birds",
]
