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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.models import get_model_weights
from torchvision.transforms import v2
from tqdm.auto import tqdm

from labkit.config import data_root, seed_everything, shown_path
from labkit.data.birds import carve_validation, load_source_birds
from labkit.data.photos import (
    SplitFolders,
    find_photo_folder,
    load_photo,
    split_class_folder,
    synthetic_photo_folder,
)
from labkit.data.synthbirds import SynthBirdsSpec
from labkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, photo_transform, scale_jitter
from labkit.labs.birds import SOURCE_BIRDS, BirdsSettings, load_lab_source
from labkit.labs.session import Lab, start_lab
from labkit.labs.settings import choose, shown
from labkit.models.vgg import VGG, VGG_CONFIGS, load_torchvision_weights, replace_head, vgg
from labkit.training.metrics import top_k_error
from labkit.training.recipe import Stage, fit_stage
from labkit.vgg.dense_evaluation import dense_scores, fully_convolutional
from labkit.vgg.multi_crop import crops_per_image, multi_crop_scores
from labkit.vgg.receptive_field import receptive_field_table

__all__ = [
    "LAB",
    "PROFILES",
    "Pretrained",
    "Settings",
    "build_vgg",
    "compare_evaluations",
    "early_stopping_note",
    "EvaluationSet",
    "evaluation_scales",
    "evaluation_sets",
    "fine_tune",
    "train_from_scratch",
    "find_vgg_weights",
    "photo_datasets",
    "photo_split",
    "pretrained_vgg",
    "settings",
    "start",
    "trained_scale",
    "window_grid",
]

LAB = "01_vgg_receptive_fields"
TEACHES = "VGG: output sizes, receptive fields, 3x3 stacks, dense and multi-crop evaluation"
TORCHVISION_NAMES = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}  # with weights

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
    eval_images: int | None = None  # source test images for dense vs multi-crop; None: all
    pretrain: Stage = Stage(num_epochs=30, batch_size=32, accum_steps=1, lr=0.01,
                            weight_decay=5e-4, schedule="cosine",
                            label_smoothing=0.1)  # fmt: skip
    finetune: Stage = Stage(num_epochs=20, batch_size=32, accum_steps=1, lr=0.01,
                            weight_decay=5e-4, plateau_patience=3, patience=8)  # fmt: skip

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
        pretrain=Stage(num_epochs=25, batch_size=32, accum_steps=1, lr=0.02, weight_decay=5e-4,
                       schedule="cosine", label_smoothing=0.1),
        finetune=Stage(num_epochs=8, batch_size=16, accum_steps=1, lr=0.01, weight_decay=5e-4,
                       plateau_patience=2, patience=4),
    ),
    "smoke": Settings(
        profile="smoke", config="A", batch_norm=True, width=8, hidden=32, dropout=0.1,
        init="he", resize=96, crop=64, scale_min=96, scale_max=160, grid=2, eval_images=16,
        synthetic=SOURCE_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"],
        photo_birds=PHOTO_BIRDS["smoke"],
        pretrain=Stage(num_epochs=1, batch_size=8, accum_steps=1, lr=0.05, weight_decay=5e-4,
                       schedule="cosine"),
        finetune=Stage(num_epochs=1, batch_size=8, accum_steps=1, lr=0.01, weight_decay=5e-4),
    ),
}  # fmt: skip


def settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Lab 01's settings for `profile` (default: chosen as `labkit.config.profile_name`), with
    single fields overridden, e.g. `settings("cpu", width=32)`."""
    return choose(PROFILES, profile, overrides)


def start(profile: str | None = None, *, seed: int = 0, **overrides: Any) -> Lab:
    """The first cell of lab 01: seed, choose settings and device, print one line each."""
    return start_lab(LAB, TEACHES, settings(profile, **overrides), seed=seed)


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
    a file, else torchvision's cache (`torch.hub.get_dir()/checkpoints`); None when absent,
    and always for widths other than 64 or configurations torchvision has no weights for
    (A-LRN, C). Nothing is downloaded."""
    if settings.width != 64 or settings.hidden != 4096:
        return None
    if settings.imagenet_weights is not None:
        path = Path(settings.imagenet_weights)
        return path if path.is_file() else None
    name = TORCHVISION_NAMES.get(settings.config)
    if name is None:
        return None
    weights = get_model_weights(name + ("_bn" if settings.batch_norm else "")).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    return cached if cached.is_file() else None


class Pretrained(NamedTuple):
    """The VGG fine-tuning starts from, as `pretrained_vgg` returns it."""

    model: VGG
    line: str  # which weights and what they cost, for people
    origin: str  # what the weights come from, the same on every call: part of the run key
    class_names: tuple[str, ...]  # the classes of its last layer
    seconds: float = 0.0  # of labkit's pretraining (0 for ImageNet weights)


def _loader(dataset: Dataset, batch_size: int, settings: Settings, shuffle: bool, seed: int):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=settings.num_workers)  # fmt: skip


def _train(
    model: nn.Module,
    stage: Stage,
    train_set: Dataset,
    val_set: Dataset,
    settings: Settings,
    *,
    runs_dir: str | os.PathLike | None,
    run_info: dict[str, Any],
    seed: int,
    progress: bool,
    desc: str,
) -> pd.DataFrame:
    """Every layer of `model` trained for one stage through `labkit.training.loop.fit`, the best
    validation epoch's weights kept; with `runs_dir`, a finished run only loads."""
    return fit_stage(
        model,
        stage,
        _loader(train_set, stage.batch_size, settings, shuffle=True, seed=seed),
        _loader(val_set, settings.eval_batch_size, settings, shuffle=False, seed=seed),
        parameters=model.parameters(),
        runs_dir=runs_dir,
        run_info={"seed": seed, **run_info},
        progress=progress,
        desc=desc,
    )


def pretrained_vgg(
    settings: Settings,
    *,
    device: torch.device | str = "cpu",
    runs_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Pretrained:
    """The VGG fine-tuning starts from, a line saying which it is, its origin and classes.

    With ImageNet weights on disk (`find_vgg_weights`), torchvision's VGG of the settings'
    configuration with them (1,000 classes). Otherwise the settings' VGG trained whole on the
    source-task species (`load_lab_source`, split into train and validation); with `runs_dir`
    the pretraining runs once and later calls load it.
    """
    weights = find_vgg_weights(settings)
    if weights is not None:
        model = build_vgg(settings, 1000)
        load_torchvision_weights(model, weights)
        classes = tuple(get_model_weights(TORCHVISION_NAMES[settings.config]).IMAGENET1K_V1
                        .meta["categories"])  # fmt: skip
        line = f"pretrained: VGG {settings.config} with ImageNet weights from {shown_path(weights)}"
        origin = f"ImageNet weights {weights.name}, {weights.stat().st_size} bytes"
        return Pretrained(model.to(device), line, origin, classes)
    source = load_lab_source(settings, root=root, verbose=False)
    train, val = carve_validation(source.train, 0.1)
    seed_everything(0)
    model = build_vgg(settings, source.num_classes).to(device)
    history = _train(model, settings.pretrain, train, val, settings, runs_dir=runs_dir,
                     run_info={"source": settings.source.version}, seed=0, progress=progress,
                     desc="pretraining on the source species")  # fmt: skip
    line = (
        f"pretrained: VGG {settings.config} (width {settings.width}) trained by labkit on "
        f"{source.num_classes} synthetic source species, none of them the lab's: "
        f"{history['val_acc'].max():.1%} on their validation images after "
        f"{history['seconds'].sum():.0f} s of training (no ImageNet weights on disk)"
    )
    run = history.attrs.get("run_dir")
    origin = f"labkit pretraining {run.name if run else settings.pretrain}"
    return Pretrained(model, line, origin, source.class_names, float(history["seconds"].sum()))


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
            f"no {settings.photo_folder} under {shown_path(base)}: {count} synthetic bird "
            f"species as a photo folder instead, at {shown_path(source)}"
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
    return _train(model, settings.finetune, train, val, settings, runs_dir=runs_dir,
                  run_info=info, seed=seed, progress=progress, desc=desc)  # fmt: skip


def evaluation_scales(scale_min: int, scale_max: int, crop: int) -> tuple[int, tuple[int, ...]]:
    """The paper's test scales for a network trained on crops of images whose short side S was
    `scale_min` (a fixed S: `scale_max` equal) or drawn from [scale_min, scale_max] (jittered).

    Returns `(single, scales)`: the single test scale Q (section 4.1: S, or the middle of the
    jitter's range) and the three of multi-scale evaluation (section 4.2: S - 32, S, S + 32 for a
    fixed S; S_min, the middle and S_max for a jittered one). A scale smaller than the crop is
    left out: no crop fits it, and dense evaluation needs a crop's worth of image.
    """
    if scale_min == scale_max:
        single, scales = scale_min, (scale_min - 32, scale_min, scale_min + 32)
    else:
        single = (scale_min + scale_max) // 2
        scales = (scale_min, single, scale_max)
    return single, tuple(q for q in scales if q >= crop)


def trained_scale(scale_min: int, scale_max: int) -> str:
    """How a network's training scale reads: 'S = 112' or 'S in [96, 128]'."""
    return f"S = {scale_min}" if scale_min == scale_max else f"S in [{scale_min}, {scale_max}]"


class EvaluationSet(NamedTuple):
    """A network and the images dense and multi-crop evaluation score it on, with the test
    scales its training scale calls for, as `evaluation_sets` returns them."""

    name: str  # which network on which images, short (the table's index)
    model: VGG  # the network scored
    images: torch.Tensor  # (N, 3, side, side) normalised, side = the largest test scale
    labels: torch.Tensor  # (N,)
    class_names: tuple[str, ...]
    trained_at: str  # its training scale, e.g. "S = 112"
    single: int  # the single test scale Q
    scales: tuple[int, ...]  # the test scales of multi-scale evaluation
    line: str  # all of it, for people


def _spread(count: int, wanted: int | None) -> list[int]:
    """`wanted` positions spread evenly over range(count) (all of them for None)."""
    if wanted is None or wanted >= count:
        return list(range(count))
    return [int(i * count / wanted) for i in range(wanted)]


def _scored(name: str, model: VGG, test: Dataset, names, scale_range, settings, what: str):
    """An EvaluationSet of `model` on (spread) images of `test`, read at the largest scale."""
    single, scales = evaluation_scales(*scale_range, settings.crop)
    items = [test[i] for i in _spread(len(test), settings.eval_images)]
    _, rule = evaluation_scales(*scale_range, 0)
    left_out = sorted(set(rule) - set(scales))
    line = (
        f"scored: {what}: {len(items)} images; trained at {trained_scale(*scale_range)}, so "
        f"tested at Q = {single} alone and at Q = {', '.join(map(str, rule))} together"
        + (f" ({', '.join(map(str, left_out))} left out: below the {settings.crop}-pixel crop)"
           if left_out else "")
    )  # fmt: skip
    images = torch.stack([item[0] for item in items])
    labels = torch.tensor([int(item[1]) for item in items])
    return EvaluationSet(name, model, images, labels, tuple(names),
                         trained_scale(*scale_range), single, scales, line)  # fmt: skip


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
        sets.append(_scored("pretrained, source species", pretrained.model, test, names, fixed,
                            settings, what))  # fmt: skip
    jittered = (settings.scale_min, settings.scale_max)
    side = max(evaluation_scales(*jittered, settings.crop)[1])
    test = ImageFolder(split.val, photo_transform(side, side, train=False), loader=load_photo)
    what = (
        f"the fine-tuned VGG on the {len(split.class_names)} photo classes' validation images "
        f"(top-5 error left out: {len(split.class_names)} classes)"
    )
    sets.append(_scored("fine-tuned, photos", fine_tuned, test, split.class_names, jittered,
                        settings, what))  # fmt: skip
    return sets


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    return v2.functional.resize(images, [size], antialias=True)


def window_grid(features: nn.Module, scales: Sequence[int], grid: int) -> pd.DataFrame:
    """Where dense evaluation's windows sit at each test scale Q (one row per scale).

    Columns: the last feature map's side, Q / jump (its side before the floors), the windows
    per side (grid x grid each), and how many pixels the centre of the windows' grid lies above
    and left of the image's centre (0 when Q is a multiple of the jump: the floors drop
    nothing).
    """
    rows = {}
    for q in scales:
        last = receptive_field_table(features, q).iloc[-1]
        side, jump, first = int(last["output size"]), int(last["jump"]), last["first centre"]
        windows = side - grid + 1
        centre = first + ((grid - 1) / 2 + (windows - 1) / 2) * jump
        rows[q] = {"last map": side, "Q / jump": q / jump, "windows per side": windows,
                   "grid's centre off by (px)": q / 2 - centre}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("test scale Q")


def early_stopping_note(history: pd.DataFrame) -> str:
    """Which epoch's weights early stopping kept (the best validation accuracy, the first of
    equals), and, when that is epoch 1 of a curve that went down and up again after it, that
    the network kept is the one after a single epoch."""
    acc = history["val_acc"].to_numpy()
    best = int(acc.argmax())
    later = acc[best + 1 :]
    note = f"early stopping kept epoch {best + 1} of {len(acc)} ({acc[best]:.1%} on validation)"
    steps = later[1:] - later[:-1]
    if best == 0 and (steps < 0).any() and (steps > 0).any():
        shown = ", ".join(f"{a:.1%}" for a in later)
        note += (
            f": after it the validation accuracy swung ({shown}) without beating it, so the "
            "network kept is the one after a single epoch of fine-tuning"
        )
    elif len(later):
        note += f"; the {len(later)} epochs after it reached {later.max():.1%} at best"
    return note


def compare_evaluations(
    scored: EvaluationSet,
    settings: Settings,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> pd.DataFrame:
    """Top-1 and top-5 error and seconds of five ways to score the same images:

    - one centre crop at the single test scale;
    - dense evaluation at the single test scale (the fully convolutional net on the whole
      image, its class-score map averaged);
    - dense at all test scales, with flips (posteriors averaged);
    - multi-crop: a `grid` x `grid` grid of crops at all test scales, with flips;
    - dense and multi-crop together (their posteriors averaged), as the paper combines them.

    The top-5 error is NaN for five classes or fewer (it is 0 by definition). `device`: where
    the images go (default: the model's).
    """
    model = scored.model
    device = device if device is not None else next(model.parameters()).device
    images, labels = scored.images.to(device), scored.labels.to(device)
    fc = fully_convolutional(model).to(device)
    single, scales = scored.single, scored.scales
    rows: dict[str, tuple[str, int, float]] = {}
    posteriors: dict[str, torch.Tensor] = {}

    def dense(qs: tuple[int, ...], flip: bool) -> torch.Tensor:
        per_scale = []  # (N, num_classes) posteriors at each scale, averaged below
        for q in qs:
            chunks = [dense_scores(fc, _resized(images[i : i + batch_size], q), flip=flip)
                      for i in range(0, len(images), batch_size)]  # fmt: skip
            per_scale.append(torch.cat(chunks))
        return torch.stack(per_scale).mean(dim=0)

    def crops(qs: tuple[int, ...], grid: int, flip: bool) -> torch.Tensor:
        return multi_crop_scores(model, images, scales=qs, crop=settings.crop, grid=grid,
                                 flip=flip, batch_size=batch_size)  # fmt: skip

    every = ", ".join(map(str, scales))
    ways = {
        "centre crop, single scale": (str(single), lambda: crops((single,), 1, False), 1),
        "dense, single scale": (str(single), lambda: dense((single,), False), 1),
        "dense, all scales + flips": (every, lambda: dense(scales, True), 2 * len(scales)),
        "multi-crop, all scales + flips": (
            every,
            lambda: crops(scales, settings.grid, True),
            crops_per_image(settings.grid, scales, True),
        ),
    }
    times: dict[str, float] = {}
    for name, (qs, score, passes) in tqdm(ways.items(), desc="evaluations", disable=not progress):
        begin = time.perf_counter()
        posteriors[name] = score()
        times[name] = time.perf_counter() - begin
        rows[name] = (qs, passes, times[name])
    both = ("dense, all scales + flips", "multi-crop, all scales + flips")
    posteriors["dense + multi-crop"] = (posteriors[both[0]] + posteriors[both[1]]) / 2
    rows["dense + multi-crop"] = (every, rows[both[0]][1] + rows[both[1]][1],
                                  times[both[0]] + times[both[1]])  # fmt: skip
    top5 = len(scored.class_names) > 5
    return pd.DataFrame(
        {
            "test scales Q": [rows[n][0] for n in rows],
            "top-1 error": [top_k_error(posteriors[n], labels, 1) for n in rows],
            "top-5 error": [
                top_k_error(posteriors[n], labels, 5) if top5 else float("nan") for n in rows
            ],
            "forward passes per image": [rows[n][1] for n in rows],
            "seconds": [rows[n][2] for n in rows],
        },
        index=pd.Index(list(rows), name="evaluation"),
    )
