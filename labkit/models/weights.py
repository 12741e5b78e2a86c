"""ImageNet weights as data: one `Weights` per torchvision network whose weights the labs look
for on disk, carrying the file's name, where it is looked for, the preprocessing the weights
expect and the classes of their last layer (as torchvision's `VGG16_Weights.IMAGENET1K_V1` do).

Nothing is ever downloaded: `Weights.find` returns the file when it is on disk, else None, and
the labs then pretrain on the synthetic source species instead (`labkit.labs.pretraining`).
The names, files, presets and categories are read from torchvision's own weights table.

Used in: 01_vgg_receptive_fields (VGG A, B, D, E with or without batch norm, `vgg_weights`),
04_bcnn_hbp and 05_opam (VGG-16's features as the backbone, `VGG16_WEIGHTS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.models import get_model_weights
from torchvision.transforms import v2

from labkit.config import data_root
from labkit.data.transforms import photo_transform

__all__ = ["VGG16_WEIGHTS", "WEIGHTS", "WEIGHTS_FOLDER", "Weights", "vgg_weights"]

WEIGHTS_FOLDER = "weights"  # under the data folder: `<data>/weights/<file name>`


@dataclass(frozen=True)
class Weights:
    """One network's ImageNet weights: the file, its preprocessing, its classes.

    Attributes:
        arch: torchvision's builder name, e.g. "vgg16" or "vgg19_bn".
        name: the network for people, e.g. "VGG-16".
        file_name: the file torchvision saves them as, e.g. "vgg16-397923af.pth" (a state dict).
        mean, std: the per-channel normalisation the weights were trained with (ImageNet's).
        resize, crop: the evaluation preset: short side resized to `resize` px, centre `crop` px.
        categories: ImageNet's 1,000 class names in the order of the last layer.
    """

    arch: str
    name: str
    file_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: int
    crop: int
    categories: tuple[str, ...]

    def find(
        self, path: str | os.PathLike | None = None, root: str | os.PathLike | None = None
    ) -> Path | None:
        """The weights file on disk, or None (nothing is downloaded).

        `path` when given: that file if it exists, else None. Otherwise the first that exists of
        `<data>/weights/<file_name>` (the data folder `root`, `$LABKIT_DATA` or `data/`, which
        the grader's sandbox can read) and torchvision's cache
        (`torch.hub.get_dir()/checkpoints/<file_name>`, where a download would have put it).
        """
        if path is not None:
            return Path(path) if Path(path).is_file() else None
        for folder in (data_root(root) / WEIGHTS_FOLDER, Path(torch.hub.get_dir()) / "checkpoints"):
            if (folder / self.file_name).is_file():
                return folder / self.file_name
        return None

    def transforms(self) -> v2.Compose:
        """The evaluation preprocessing the weights expect: resize the short side, centre crop,
        normalise; PIL image in, float32 (3, crop, crop) out. torchvision's preset's steps; its
        pixels differ by at most one grey level (it resizes the PIL image, this the uint8 tensor:
        `labkit.data.transforms.photo_transform`)."""
        return photo_transform(self.resize, self.crop, train=False, mean=self.mean, std=self.std)


def _imagenet(arch: str, name: str) -> Weights:
    """`arch`'s ImageNet weights (IMAGENET1K_V1) as torchvision's table describes them."""
    weights = get_model_weights(arch).IMAGENET1K_V1
    preset = weights.transforms()  # ImageClassification: sizes as one-element lists
    return Weights(
        arch=arch,
        name=name,
        file_name=Path(weights.url).name,
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        resize=preset.resize_size[0],
        crop=preset.crop_size[0],
        categories=tuple(weights.meta["categories"]),
    )


# the VGGs of Simonyan & Zisserman's table 1 that torchvision publishes weights for, by config
_VGG_ARCHS = {"A": ("vgg11", "VGG-11"), "B": ("vgg13", "VGG-13"), "D": ("vgg16", "VGG-16"),
              "E": ("vgg19", "VGG-19")}  # fmt: skip
WEIGHTS: dict[str, Weights] = {
    arch + suffix: _imagenet(arch + suffix, name + extra)
    for arch, name in _VGG_ARCHS.values()
    for suffix, extra in (("", ""), ("_bn", " with batch norm"))
}
VGG16_WEIGHTS = WEIGHTS["vgg16"]  # labs 04 and 05: VGG-16's features up to relu5_3


def vgg_weights(config: str, batch_norm: bool = False) -> Weights | None:
    """The ImageNet weights of the paper-sized VGG of `config` ("A", "B", "D", "E"; see
    `labkit.models.vgg.VGG_CONFIGS`), or None for a configuration torchvision publishes none
    for (A-LRN, C)."""
    arch = _VGG_ARCHS.get(config)
    return None if arch is None else WEIGHTS[arch[0] + ("_bn" if batch_norm else "")]
