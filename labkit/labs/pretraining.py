"""Where a bird lab's network starts: ImageNet weights when they are on disk, else labkit's
pretraining on the synthetic source-task species (disjoint from the lab's), run once in the
calling lab's runs folder so that later calls only load it.

Without ImageNet weights, replacing a last layer and fine-tuning (lab 01), or training a head on
a frozen backbone (lab 04), would start from random features; the source species give the
network features learnt elsewhere, as ImageNet does in the papers.

Used in: labs 01 (a whole VGG, `pretrained`), 04 and 05 (a backbone, `pretrained_backbone`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from labkit.bilinear.heads import GAPNet
from labkit.config import seed_everything, shown_path
from labkit.data.birds import carve_validation
from labkit.labs.birds import BirdsSettings, load_lab_source, train_stage
from labkit.models.backbones import (
    TapBackbone,
    small_vgg_backbone,
    vgg16_backbone,
)
from labkit.models.weights import VGG16_WEIGHTS
from labkit.training.recipe import Recipe

__all__ = [
    "BACKBONES",
    "ImageNetWeights",
    "Pretrained",
    "new_backbone",
    "pretrained",
    "pretrained_backbone",
]

BACKBONES = ("vgg16", "small_vgg")  # what `new_backbone` builds


class Pretrained(NamedTuple):
    """The network a lab starts from, as `pretrained` returns it."""

    model: nn.Module  # lab 01: a whole VGG; labs 04 and 05: a backbone (`TapBackbone`)
    line: str  # which network it is and what it cost, for people
    origin: str  # what its weights come from, the same on every call: part of later runs' keys
    class_names: tuple[str, ...] = ()  # the classes it was trained on (ImageNet's or the source's)
    seconds: float = 0.0  # of labkit's pretraining (0 for ImageNet weights)


class ImageNetWeights(NamedTuple):
    """A network's ImageNet weights as a lab looks for them: the file found on disk (or None),
    and how the lab builds its network with them."""

    name: str  # the network they belong to, for the printed line, e.g. "VGG-16"
    path: Path | None  # the file on disk; None when it is not there (nothing is downloaded)
    load: Callable[[Path], nn.Module]  # the lab's network holding the weights of that file
    categories: tuple[str, ...] = ()  # ImageNet's class names in the order of the last layer
    fetch: str = ""  # the `labkit fetch` name that brings the file ("" when none does)


def pretrained(
    network: Callable[[int], nn.Module],
    settings: BirdsSettings,
    recipe: Recipe,
    *,
    name: str,
    runs_dir: str | os.PathLike | None,
    weights: ImageNetWeights | None = None,
    keep: Callable[[nn.Module], nn.Module] | None = None,
    role: str = "backbone",
    val_fraction: float = 0.1,
    device: torch.device | str = "cpu",
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Pretrained:
    """The network a lab starts from, a line saying which it is, its origin and classes.

    With `weights` found on disk, the lab's network loaded with them (`weights.load`).
    Otherwise `network(n)` (a fresh network with n outputs) seeded with 0 and trained whole for
    `recipe` (`labkit.labs.birds.train_stage`) on the source-task species (`settings.source`
    at the settings' sizes), `val_fraction` of each species held out for validation; `keep`
    picks what of the trained network to return (labs 04 and 05: its backbone). With
    `runs_dir` (the calling lab's, e.g. `lab.run_dir("source_backbone")`) the pretraining runs
    once and later calls load it.

    Args:
        name: the network, for the line, e.g. "small_vgg" or "VGG A (width 16)".
        role: the line's first word: "backbone" or "network".
    """
    if weights is not None and weights.path is not None:
        path = weights.path
        line = f"{role}: {weights.name} with ImageNet weights from {shown_path(path)}"
        origin = f"ImageNet weights {path.name}, {path.stat().st_size} bytes"
        return Pretrained(weights.load(path).to(device), line, origin, weights.categories)
    source = load_lab_source(settings, root=root, verbose=False)
    train, val = carve_validation(source.train, val_fraction)
    seed_everything(0)
    net = network(source.num_classes).to(device)
    history = train_stage(net, recipe, train, val, settings, runs_dir=runs_dir,
                          run_info={"source": settings.source.version}, progress=progress,
                          desc="pretraining on the source species")  # fmt: skip
    seconds = float(history["seconds"].sum())
    line = (
        f"{role}: {name} pretrained by labkit on {source.num_classes} synthetic source species, "
        f"none of them the lab's: {history['val_acc'].max():.1%} on their validation images "
        f"after {seconds:.0f} s of training"
    )
    if weights is not None:
        bring = f": `labkit fetch {weights.fetch}` brings them" if weights.fetch else ""
        line += f" (no ImageNet weights on disk{bring})"
    run = history.attrs.get("run_dir")  # its name is the digest of the pretraining's settings
    origin = f"labkit pretraining {run.name if run else recipe}"
    model = keep(net) if keep is not None else net
    return Pretrained(model, line, origin, source.class_names, seconds)


def new_backbone(kind: str, width: int = 32) -> TapBackbone:
    """A randomly initialised backbone: "vgg16" (VGG-16 to relu5_3, taps relu5_1/2/3) or
    "small_vgg" (a narrow VGG with batch norm, channels `width`, 2x, 4x, 8x).

    Raises ValueError naming `BACKBONES` for another kind.
    """
    if kind == "vgg16":
        return vgg16_backbone()
    if kind == "small_vgg":
        return small_vgg_backbone((width, 2 * width, 4 * width, 8 * width))
    raise ValueError(f"unknown backbone {kind!r}; choose one of {BACKBONES}")


def pretrained_backbone(
    kind: str,
    width: int,
    settings: BirdsSettings,
    recipe: Recipe,
    *,
    runs_dir: str | os.PathLike | None,
    imagenet_weights: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    device: torch.device | str = "cpu",
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Pretrained:
    """The backbone a bird lab's heads start from (`new_backbone(kind, width)`), see
    `pretrained`: VGG-16 with ImageNet weights when they are on disk (`imagenet_weights`, else
    `<root>/weights` or torchvision's cache: `VGG16_WEIGHTS.find`; only for "vgg16"); otherwise
    the backbone pretrained with a global average pooling head (`GAPNet`) on the source
    species, in `runs_dir`."""
    weights = None
    if kind == "vgg16":
        weights = ImageNetWeights("VGG-16", VGG16_WEIGHTS.find(imagenet_weights, root),
                                  lambda path: vgg16_backbone(str(path)),
                                  VGG16_WEIGHTS.categories, "vgg16-weights")  # fmt: skip
    return pretrained(
        lambda num_classes: GAPNet(new_backbone(kind, width), num_classes),
        settings,
        recipe,
        name=kind,
        runs_dir=runs_dir,
        weights=weights,
        keep=lambda net: net.backbone,
        val_fraction=val_fraction,
        device=device,
        root=root,
        progress=progress,
    )
