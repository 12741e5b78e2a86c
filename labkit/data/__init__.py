"""Datasets by name: the MNIST subset or the built-in digits, decoded once into tensors."""

from labkit.data.digits import write_builtin_digits
from labkit.data.folders import decode_image, list_image_folder, read_image_folder
from labkit.data.layout import validate_split_csv, write_split_layout
from labkit.data.loaders import DigitsData, digits_augmentation, load_digits_data, make_loaders
from labkit.data.mnist import make_mnist_subset, read_idx
from labkit.data.tensor_dataset import MEAN, STD, TensorImageDataset, normalize, to_display

__all__ = [
    "MEAN",
    "STD",
    "DigitsData",
    "TensorImageDataset",
    "decode_image",
    "digits_augmentation",
    "list_image_folder",
    "load_digits_data",
    "make_loaders",
    "make_mnist_subset",
    "normalize",
    "read_idx",
    "read_image_folder",
    "to_display",
    "validate_split_csv",
    "write_builtin_digits",
    "write_split_layout",
]
