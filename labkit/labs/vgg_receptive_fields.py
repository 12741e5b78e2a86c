"""Lab 01, VGG and receptive fields: its settings for each profile, and its recipe.

The handout's recipe (001): VGG-19 with ImageNet weights, its last layer replaced, fine-tuned on
TensorFlow's five-class `flower_photos` split into train and validation folders (SGD, lr 0.01,
momentum 0.9, weight decay 5e-4, the rate divided by 10 when the validation accuracy stops
improving). labkit keeps 20% of each class for validation and trains with the paper's scale
jitter (short side S drawn from [256, 512], 224 crops) instead of the handout's random resized
crops; dense and multi-crop evaluation test each network at the paper's test scales for the
scale it was trained at (`evaluation_scales`). `full` keeps that.

Without ImageNet weights on disk the VGG is first pretrained, whole (convolutions and its
4,096-unit layers), on labkit's synthetic source-task species (disjoint from the lab's, as in
lab 04), cached in the lab's runs folder, so that replacing the last layer and fine-tuning
means what it means. Without `flower_photos` under the data folder the five classes are the
synthetic birds' first five species, written as a folder of class sub-folders. `cpu` and
`smoke` use a narrow VGG-A with batch norm at 96 and 64 pixels.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from labkit.config import data_root, seed_everything, shown_path
from labkit.data.birds import load_source_birds
from labkit.data.fetch import SOURCES as FETCHABLE
from labkit.data.photos import (
    SplitFolders,
    find_photo_folder,
    load_photo,
    read_class_index,
    split_class_folder,
    synthetic_photo_folder,
)
from labkit.data.synthbirds import SynthBirdsSpec
from labkit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    photo_transform,
    scale_jitter,
    to_display_imagenet,
)
from labkit.labs.birds import SOURCE_BIRDS, BirdsSettings, early_stopping_note, train_stage
from labkit.labs.pretraining import ImageNetWeights, Pretrained, pretrained
from labkit.labs.session import LabEntry
from labkit.labs.settings import rehearse_as, shown
from labkit.models.summary import count_parameters
from labkit.models.vgg import (
    VGG,
    VGG_CONFIGS,
    conv_stack,
    load_torchvision_weights,
    replace_head,
    vgg,
)
from labkit.models.weights import vgg_weights
from labkit.plots import plot_history
from labkit.report import show_headline
from labkit.training.recipe import Recipe
from labkit.vgg import evaluation
from labkit.vgg.dense_evaluation import class_score_map, fully_convolutional
from labkit.vgg.evaluation import EvaluationSet, evaluation_scales, evaluation_set, window_grid
from labkit.vgg.explorer import receptive_field_explorer, render_receptive_field
from labkit.vgg.predict import plot_prediction, predict
from labkit.vgg.receptive_field import layer_geometry, receptive_field_table

__all__ = [  # what 01_vgg_receptive_fields uses, and nothing else
    "VGG_CONFIGS",
    "build_vgg",
    "class_score_map",
    "compare_evaluations",
    "conv_stack",
    "count_parameters",
    "early_stopping_note",
    "evaluation_sets",
    "fine_tune",
    "fully_convolutional",
    "layer_geometry",
    "photo_datasets",
    "photo_split",
    "plot_history",
    "plot_prediction",
    "predict",
    "pretrained_vgg",
    "read_class_index",
    "receptive_field_explorer",
    "receptive_field_table",
    "render_receptive_field",
    "show_headline",
    "start",
    "to_display_imagenet",
    "train_from_scratch",
    "vgg",
    "window_grid",
]

LAB = "01_vgg_receptive_fields"
TEACHES = "VGG: output sizes, receptive fields, 3x3 stacks, dense and multi-crop evaluation"

# the five-class folder made from the synthetic birds when flower_photos is absent
PHOTO_BIRDS = {
    "smoke": SynthBirdsSpec(num_classes=5, train_per_class=4, test_per_class=2, image_size=64),
    "cpu": SynthBirdsSpec(num_classes=5, train_per_class=48, test_per_class=12, image_size=128),
    "full": SynthBirdsSpec(num_classes=5, train_per_class=64, test_per_class=16, image_size=256),
}


@dataclass(frozen=True)
class Settings(BirdsSettings):
    """Every size and rate lab 01 uses. `crop` (from `BirdsSettings`) is the side of every
    training crop; `resize` is the fixed training scale S of pretraining on the source species
    (the short side its random crops are cut from) and the short side of the validation
    photos' centre crops."""

    config: str = field(default="E", metadata=shown("VGG {}"))  # a key of VGG_CONFIGS
    batch_norm: bool = False
    width: int = field(default=64, metadata=shown("width {}"))  # conv1's channels (64: paper)
    hidden: int = 4096  # units of the two hidden fully connected layers
    dropout: float = 0.5  # after each hidden layer; 0.5 suits 4,096 units, it starves 256
    init: str = "kaiming"  # torchvision's; "he" for a narrow classifier (see labkit.models.vgg)
    imagenet_weights: str | None = None  # a torchvision VGG weights file; None: its cache
    photo_folder: str = "flower_photos"  # under the data folder, used when present
    photo_birds: SynthBirdsSpec = PHOTO_BIRDS["full"]  # the built-in five classes otherwise
    val_fraction: float = 0.2  # of each photo class, for validation (the handout's split)
    scale_min: int = field(default=256, metadata=shown("S in [{}"))  # scale jitter's short side
    scale_max: int = field(default=512, metadata=shown("{}]"))
    grid: int = field(default=5, metadata=shown("multi-crop {0} x {0}"))  # crops per scale
    # source test images for dense vs multi-crop; None: all
    eval_images: int | None = field(default=None, metadata=rehearse_as(2))
    pretrain: Recipe = Recipe(num_epochs=30, batch_size=32, accum_steps=1, lr=0.01,
                              weight_decay=5e-4, schedule="cosine",
                              label_smoothing=0.1, restore_best=True)  # fmt: skip
    finetune: Recipe = Recipe(num_epochs=20, batch_size=32, accum_steps=1, lr=0.01,
                              weight_decay=5e-4, schedule="plateau", plateau_patience=3,
                              patience=8, restore_best=True)  # fmt: skip

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`), the configuration and the sizes.

        Raises:
            ValueError: an unknown configuration, a crop that is not a multiple of 32 (VGG's
                five pools), or a scale range that does not hold the crop.
        """
        super().__post_init__()
        if self.config not in VGG_CONFIGS:
            known = list(VGG_CONFIGS)
            raise ValueError(f"unknown VGG configuration {self.config!r}; one of {known}")
        if self.crop % 32 or self.crop < 32:
            raise ValueError(f"crop={self.crop}: VGG halves it five times; use a multiple of 32")
        if not self.crop <= self.scale_min <= self.scale_max:
            raise ValueError(
                f"scale jitter needs crop <= scale_min <= scale_max, got {self.crop}, "
                f"{self.scale_min}, {self.scale_max}"
            )

    @property
    def feature_grid(self) -> int:
        """Side of the last feature map on a `crop` input: the first FC layer's window."""
        return self.crop // 32


PROFILES = {
    "full": Settings(
        profile="full", resize=256, crop=224, synthetic=SOURCE_BIRDS["full"],
        source=SOURCE_BIRDS["full"], photo_birds=PHOTO_BIRDS["full"],
    ),
    # resize (the fixed S of pretraining) is crop + 32 in every profile, as the paper's S = 256
    # for 224 crops: its test scales S - 32, S and S + 32 all hold a crop
    "cpu": Settings(
        profile="cpu", config="A", batch_norm=True, width=16, hidden=256, dropout=0.1,
        init="he", resize=128, crop=96, scale_min=96, scale_max=128, grid=3,
        synthetic=SOURCE_BIRDS["cpu"], source=SOURCE_BIRDS["cpu"], photo_birds=PHOTO_BIRDS["cpu"],
        pretrain=Recipe(num_epochs=25, batch_size=32, accum_steps=1, lr=0.02, weight_decay=5e-4,
                        schedule="cosine", label_smoothing=0.1, restore_best=True),
        finetune=Recipe(num_epochs=8, batch_size=16, accum_steps=1, lr=0.01, weight_decay=5e-4,
                        plateau_patience=2, patience=4, schedule="plateau", restore_best=True),
    ),
    "smoke": Settings(
        profile="smoke", config="A", batch_norm=True, width=8, hidden=32, dropout=0.1,
        init="he", resize=96, crop=64, scale_min=96, scale_max=160, grid=2, eval_images=16,
        synthetic=SOURCE_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"],
        photo_birds=PHOTO_BIRDS["smoke"],
        pretrain=Recipe(num_epochs=1, batch_size=8, accum_steps=1, lr=0.05, weight_decay=5e-4,
                        schedule="cosine", restore_best=True),
        finetune=Recipe(num_epochs=1, batch_size=8, accum_steps=1, lr=0.01, weight_decay=5e-4,
                        schedule="plateau", restore_best=True),
    ),
}  # fmt: skip


ENTRY = LabEntry(LAB, TEACHES, PROFILES)
settings, start = ENTRY.settings, ENTRY.start  # settings("cpu", width=32); lab = start()


def build_vgg(settings: Settings, num_classes: int) -> VGG:
    """A randomly initialised VGG of the settings' configuration, width and classifier, whose
    first fully connected layer reads a `feature_grid` x `feature_grid` map (7 at 224 px)."""
    return vgg(
        settings.config,
        batch_norm=settings.batch_norm,
        num_classes=num_classes,
        width=settings.width,
        hidden=settings.hidden,
        grid=settings.feature_grid,
        dropout=settings.dropout,
        init=settings.init,
    )


def find_vgg_weights(settings: Settings) -> Path | None:
    """The ImageNet weights of the settings' VGG on disk: `settings.imagenet_weights` if it is
    a file, else its file under `<data>/weights` or in torchvision's cache (`vgg_weights(...)
    .find()`); None when absent, and always for widths other than 64 or configurations
    torchvision has no weights for (A-LRN, C). Nothing is downloaded."""
    if settings.width != 64 or settings.hidden != 4096:
        return None
    if settings.imagenet_weights is not None:
        path = Path(settings.imagenet_weights)
        return path if path.is_file() else None
    weights = vgg_weights(settings.config, settings.batch_norm)
    return None if weights is None else weights.find()


def _with_imagenet_weights(settings: Settings, path: Path) -> VGG:
    """The settings' VGG (1,000 classes) holding torchvision's ImageNet weights from `path`."""
    model = build_vgg(settings, 1000)
    load_torchvision_weights(model, path)
    return model


def pretrained_vgg(
    settings: Settings,
    *,
    device: torch.device | str = "cpu",
    runs_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Pretrained:
    """The VGG fine-tuning starts from, a line saying which it is, its origin and classes
    (`labkit.labs.pretraining.pretrained`).

    With ImageNet weights on disk (`find_vgg_weights`), torchvision's VGG of the settings'
    configuration with them (1,000 classes). Otherwise the settings' VGG trained whole on the
    source-task species (`settings.pretrain`, a tenth of each species for validation); with
    `runs_dir` the pretraining runs once and later calls load it.
    """
    known = vgg_weights(settings.config)
    own = vgg_weights(settings.config, settings.batch_norm)  # what find_vgg_weights looks for
    usable = own is not None and (settings.width, settings.hidden) == (64, 4096)
    fetch = f"{own.arch}-weights" if usable else ""
    weights = ImageNetWeights(f"VGG {settings.config}", find_vgg_weights(settings),
                              lambda path: _with_imagenet_weights(settings, path),
                              known.categories if known else (),
                              fetch if fetch in FETCHABLE else "")  # fmt: skip
    return pretrained(lambda num_classes: build_vgg(settings, num_classes), settings,
                      settings.pretrain, name=f"VGG {settings.config} (width {settings.width})",
                      runs_dir=runs_dir, weights=weights, role="network", val_fraction=0.1,
                      device=device, root=root, progress=progress)  # fmt: skip


def photo_split(
    settings: Settings, root: str | os.PathLike | None = None, verbose: bool = True
) -> SplitFolders:
    """The five-class photo folder split into train and validation folders (seeded), with
    its class_idx.json: `flower_photos` under the data folder when present, else the
    synthetic birds' first five species written as class sub-folders. Prints one line saying
    which (with `verbose`)."""
    base = data_root(root)
    found = find_photo_folder(settings.photo_folder, root=base)
    if found is not None:
        source, what = found, f"{settings.photo_folder} at {shown_path(found)}"
    else:
        source = synthetic_photo_folder(settings.photo_birds, root=base)
        count = settings.photo_birds.num_classes
        what = (
            f"no {settings.photo_folder} under {shown_path(base)} (`labkit fetch flowers` brings "
            f"flower_photos): {count} synthetic bird species as a photo folder instead, at "
            f"{shown_path(source)}"
        )
    tag = f"{source.parent.name}-{source.name}-val{settings.val_fraction:g}"
    split = split_class_folder(source, base / "splits" / tag, val_fraction=settings.val_fraction,
                               seed=0)  # fmt: skip
    if verbose:
        print(
            f"photos: {what} - train {int(split.counts['train'].sum())}, validation "
            f"{int(split.counts['val'].sum())} images, {len(split.class_names)} classes"
        )
    return split


def jitter_transform(settings: Settings) -> v2.Compose:
    """Training images: the paper's scale jitter (`scale_jitter`), then ImageNet's
    normalisation; PIL image in, float32 (3, crop, crop) out."""
    return v2.Compose([
        v2.PILToTensor(),
        scale_jitter(settings.scale_min, settings.scale_max, settings.crop),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])  # fmt: skip


def photo_datasets(split: SplitFolders, settings: Settings) -> tuple[ImageFolder, ImageFolder]:
    """(train, validation) ImageFolders of a `photo_split`: scale-jittered training crops,
    validation centre crops of images resized to `settings.resize`."""
    train = ImageFolder(split.train, jitter_transform(settings), loader=load_photo)
    val = ImageFolder(split.val, photo_transform(settings.resize, settings.crop, train=False),
                      loader=load_photo)  # fmt: skip
    return train, val


def fine_tune(
    pretrained: Pretrained,
    split: SplitFolders,
    settings: Settings,
    *,
    runs_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[VGG, pd.DataFrame]:
    """The handout's fine-tuning: the pretrained VGG's last layer replaced by one for the
    photo classes, then every layer trained (`settings.finetune`) on the scale-jittered
    training folder, the best validation epoch kept. The pretrained model is left as it is.

    Returns the fine-tuned model and its history (one row per epoch).
    """
    model = copy.deepcopy(pretrained.model)
    seed_everything(seed)
    replace_head(model, len(split.class_names))
    model = model.to(next(pretrained.model.parameters()).device)
    history = _train_on_photos(model, split, settings, runs_dir, {"pretrained": pretrained.origin},
                               seed, progress, "fine-tuning")  # fmt: skip
    return model, history


def train_from_scratch(
    split: SplitFolders,
    settings: Settings,
    *,
    device: torch.device | str = "cpu",
    runs_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[VGG, pd.DataFrame]:
    """The baseline fine-tuning is measured against: the same VGG, randomly initialised, trained
    on the same photos with the same stage (`settings.finetune`). The handout's own first try:
    from random weights its VGG stalled at 24% on flower_photos, against 94% fine-tuned.

    Returns the model and its history (one row per epoch).
    """
    seed_everything(seed)
    model = build_vgg(settings, len(split.class_names)).to(device)
    history = _train_on_photos(model, split, settings, runs_dir, {"pretrained": "none"}, seed,
                               progress, "from scratch")  # fmt: skip
    return model, history


def _train_on_photos(
    model: VGG,
    split: SplitFolders,
    settings: Settings,
    runs_dir: str | os.PathLike | None,
    run_info: dict[str, Any],
    seed: int,
    progress: bool,
    desc: str,
) -> pd.DataFrame:
    """`model` trained whole on the photo split's jittered training folder (`settings.finetune`),
    validated on its validation folder; runs keyed by the split's folder name, not its path."""
    train, val = photo_datasets(split, settings)
    info = {**run_info, "photos": split.train.parent.name}
    return train_stage(model, settings.finetune, train, val, settings, runs_dir=runs_dir,
                       run_info=info, seed=seed, progress=progress, desc=desc)  # fmt: skip


def evaluation_sets(
    pretrained: Pretrained,
    fine_tuned: VGG,
    split: SplitFolders,
    settings: Settings,
    root: str | os.PathLike | None = None,
) -> list[EvaluationSet]:
    """The networks dense and multi-crop evaluation compare, each on whole images (square;
    photos centre-cropped to a square) at its largest test scale, the first
    `settings.eval_images` spread over the classes (all if None):

    - pretrained by labkit: that network on the source species' test images, a task with enough
      classes for a top-5 error to mean something; it was trained at one fixed scale
      S = `settings.resize`. With ImageNet weights it is not scored (ImageNet's images are not
      here);
    - always: the fine-tuned network on the photos' validation folder; it was trained at a
      jittered S in [`settings.scale_min`, `settings.scale_max`].
    """
    sets = []
    if pretrained.origin.startswith("labkit pretraining"):
        fixed = (settings.resize, settings.resize)
        side = max(evaluation_scales(*fixed, settings.crop)[1])
        test = load_source_birds(resize=side, crop=side, synthetic=settings.source, root=root,
                                 verbose=False).test  # fmt: skip
        names = test.index.class_names
        what = f"the pretrained VGG on the {len(names)} source species' test images"
        sets.append(evaluation_set("pretrained, source species", pretrained.model, test, names,
                                   fixed, settings.crop, count=settings.eval_images,
                                   what=what))  # fmt: skip
    jittered = (settings.scale_min, settings.scale_max)
    side = max(evaluation_scales(*jittered, settings.crop)[1])
    test = ImageFolder(split.val, photo_transform(side, side, train=False), loader=load_photo)
    what = (
        f"the fine-tuned VGG on the {len(split.class_names)} photo classes' validation images "
        f"(top-5 error left out: {len(split.class_names)} classes)"
    )
    sets.append(evaluation_set("fine-tuned, photos", fine_tuned, test, split.class_names,
                               jittered, settings.crop, count=settings.eval_images,
                               what=what))  # fmt: skip
    return sets


def compare_evaluations(scored: EvaluationSet, settings: Settings, **options: Any) -> pd.DataFrame:
    """Top-1 and top-5 error and seconds of five ways to score the same images, with the
    settings' crop and multi-crop grid (`labkit.vgg.evaluation.compare_evaluations`, whose
    keyword options `device`, `batch_size` and `progress` pass through): centre crop and dense at
    the single test scale, dense and multi-crop at all scales with flips, and both together."""
    return evaluation.compare_evaluations(scored, crop=settings.crop, grid=settings.grid, **options)
