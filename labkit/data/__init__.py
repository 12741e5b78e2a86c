"""Datasets by name (`load_data`): the digits (MNIST subset or built-in), the birds
(CUB-200-2011 or synthetic), a folder of class sub-folders; each a `LabData`."""

from labkit.data.augment import scale_jitter
from labkit.data.birds import find_cub, load_birds, load_source_birds
from labkit.data.cub import CubError, CubIndex, check_cub, flip_permutation, read_cub_index
from labkit.data.cub_dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BirdTransform,
    CubDataset,
    open_rgb,
    to_display_imagenet,
)
from labkit.data.digits import write_builtin_digits
from labkit.data.folder_split import (
    CLASS_INDEX_FILE,
    SplitFolders,
    find_photo_folder,
    read_class_index,
    split_class_folder,
    synthetic_photo_folder,
    write_class_index,
)
from labkit.data.folders import decode_image, list_image_folder, read_image_folder
from labkit.data.lab_data import LabData
from labkit.data.layout import validate_split_csv, write_split_layout
from labkit.data.loaders import DigitsData, digits_augmentation, load_digits_data, make_loaders
from labkit.data.mnist import make_mnist_subset, read_idx
from labkit.data.named import LOADERS, load_data
from labkit.data.photo_folder import load_photo, load_photo_folder, split_by_class
from labkit.data.synthbirds import SynthBirdsSpec, species_list, write_synthetic_birds
from labkit.data.tensor_dataset import MEAN, STD, TensorImageDataset, normalize, to_display

__all__ = [
    "CLASS_INDEX_FILE",
    "SplitFolders",
    "find_photo_folder",
    "load_photo",
    "read_class_index",
    "scale_jitter",
    "split_class_folder",
    "synthetic_photo_folder",
    "write_class_index",
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
    "SynthBirdsSpec",
    "TensorImageDataset",
    "check_cub",
    "decode_image",
    "digits_augmentation",
    "find_cub",
    "flip_permutation",
    "list_image_folder",
    "load_birds",
    "load_data",
    "load_digits_data",
    "load_photo_folder",
    "load_source_birds",
    "make_loaders",
    "make_mnist_subset",
    "normalize",
    "open_rgb",
    "read_cub_index",
    "read_idx",
    "read_image_folder",
    "species_list",
    "split_by_class",
    "to_display",
    "to_display_imagenet",
    "validate_split_csv",
    "write_builtin_digits",
    "write_split_layout",
    "write_synthetic_birds",
]
