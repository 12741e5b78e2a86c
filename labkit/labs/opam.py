"""Lab 05, the object-part attention model (OPAM): its settings for each profile and its recipe.

Peng, He and Zhao, "Object-Part Attention Model for Fine-grained Image Classification" (TIP
2018; handout 004). Only image-level labels are used, never the boxes or parts:
1. Patch filtering: candidate patches (selective search, or multi-scale windows without OpenCV)
   are scored by a classifier fine-tuned on the images; those whose soft-max score for the
   image's label passes a threshold are kept, and ClassNet trains on the images plus them.
2. Object-level attention: ClassNet's class activation map of its predicted class, binarised,
   its largest connected region's box: the object (the CAM paper's rule; the authors' code keeps
   the largest of the boxes the CAM paper's generator makes at three levels). ObjectNet is
   ClassNet fine-tuned on the object crops. (`Settings.saliency` can binarise the
   class-agnostic sum of the last convolution's maps instead; the notebook measures both.)
3. Part-level attention: among the kept patches, those inside the object (object spatial
   constraint), the pair with the best part score (part spatial constraint); the parts aligned
   by clustering ClassNet's last convolution's filters into groups; PartNet trains on the
   aligned part crops.
4. Fusion of the three networks' soft-max scores: the fixed 0.5 / 0.3 / 0.2 of the authors'
   released code (written for Stanford Cars) against weights chosen by k-fold cross-validation
   on the validation split carved from training, as the paper chooses them.

The backbone: VGG-16 with ImageNet weights when they are on disk; without them labkit
pretrains the settings' backbone once on the synthetic source-task species, in this lab's runs
folder (`labkit.labs.pretraining`; the cpu profile's backbone and pretraining are lab 04's).
`cpu` and `smoke` use a narrow VGG with batch norm. The three networks train a fixed number of
epochs on a cosine schedule, the last epoch kept: the validation split carved from training
chooses only the fusion weights, never the test set; the synthetic birds' true boxes and parts
only score what the attention found.

The steps themselves live in the attention wing (`labkit.attention.pipeline`, `.evaluation`);
this module holds the settings, passes their values to the steps, and exports exactly what
the notebook uses.

Used in: 05_opam.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from labkit.attention import evaluation, pipeline
from labkit.attention.crops import BoxCrops
from labkit.attention.evaluation import (
    attention_view,
    group_contents,
    localised_share,
    parts_cover,
)
from labkit.attention.figures import AttentionView
from labkit.attention.filtering import filter_patches
from labkit.attention.part_alignment import PartNet
from labkit.attention.part_selection import select_parts
from labkit.attention.pipeline import SALIENCY, Attention, network_scores, new_classnet
from labkit.attention.viewer import attention_viewer, render_attention
from labkit.bilinear.heads import GAPNet
from labkit.config import seed_everything
from labkit.data.birds import BirdTransform, CubDataset, carve_validation
from labkit.data.datasets import LabData
from labkit.data.transforms import to_display_imagenet
from labkit.labs.birds import (
    SOURCE_BIRDS,
    SYNTHETIC_BIRDS,
    BirdsSettings,
    load_lab_birds,
    train_stage,
)
from labkit.labs.pretraining import BACKBONES, Pretrained, pretrained_backbone
from labkit.labs.session import Lab, LabEntry
from labkit.labs.settings import rehearse_as, shown
from labkit.models.res2net import res2net50_26w_4s, split_receptive_fields
from labkit.models.summary import count_parameters
from labkit.plots import plot_bird_grid, plot_history
from labkit.report import show_headline
from labkit.training.recipe import Recipe

__all__ = [  # what 05_opam uses, and nothing else
    "AttentionView",
    "BoxCrops",
    "attention_view",
    "attention_viewer",
    "candidate_parts",
    "choose_parts",
    "count_parameters",
    "filter_patches",
    "fusion_table",
    "group_contents",
    "load_splits",
    "localised_share",
    "locate",
    "network_scores",
    "new_classnet",
    "new_partnet",
    "part_groups",
    "parts_cover",
    "patch_training_set",
    "plot_bird_grid",
    "plot_history",
    "pretrained",
    "propose",
    "render_attention",
    "res2net50_26w_4s",
    "score_patches",
    "select_parts",
    "show_headline",
    "split_receptive_fields",
    "start",
    "to_display_imagenet",
    "train_network",
]

LAB = "05_opam"
TEACHES = "object-part attention (OPAM): patches, CAM saliency, object box, parts, fusion"
PROPOSAL_METHODS = ("auto", "selective_search", "multiscale")
FUSION_CRITERIA = ("log_loss", "accuracy")


@dataclass(frozen=True)
class Settings(BirdsSettings):
    """Every size, rate and threshold lab 05 uses; the comment beside each field says what it
    is (see the source, or `dataclasses.fields(Settings)`).

    One value for a notebook: `lab05.start(proposals=8)`; for a whole class, the same call in
    the first cell of `solutions/05_opam.ipynb`, then `labkit release`. An unknown name or a
    value of the wrong type or choice fails in that first cell.
    """

    backbone: str = field(default="vgg16", metadata=shown("{} backbone"))  # one of BACKBONES
    width: int = 32  # small_vgg: channels of its first block (then 2x, 4x, 8x)
    imagenet_weights: str | None = None  # VGG-16 weights file; None: torchvision's cache
    val_fraction: float = 0.1  # of each class's training images, held out: the fusion weights
    attention_size: int = field(default=448, metadata=shown("attention at {}px"))  # whole image
    proposals: int = field(  # candidates
        default=200, metadata={**shown("{} patches per image"), **rehearse_as(8)}
    )
    # "auto" (selective search when OpenCV's contrib module is there, else multi-scale windows),
    # "selective_search" or "multiscale" (labkit.attention.propose_patches)
    proposal_method: str = "auto"
    # patches a forward pass scores (batches of 64 ran fastest on a CPU)
    patch_batch_size: int = field(default=64, metadata=rehearse_as(4))
    filter_threshold: float = 0.5  # a patch is kept when its label's soft-max score exceeds this
    patches_per_image: int = 5  # kept patches per training image that ClassNet also trains on
    saliency: str = field(default="cam", metadata=shown("{} saliency"))  # one of SALIENCY
    # binarisation level on the map scaled to [0, 1] from its minimum to its maximum (the CAM
    # paper's 20%, which it takes of the map's maximum)
    saliency_threshold: float = 0.2
    # test images that section 6 boxes with the student's own object_box_from and iou (a search
    # written in Python takes up to a second on a 448 px map)
    own_boxes: int = field(default=500, metadata=rehearse_as(2))
    min_iou: float = 0.0  # object constraint: a part's IoU with the object box must exceed this
    min_inside: float = 0.4  # ... and more than this fraction of the part inside the object box
    max_candidates: int = 200  # candidate parts kept per image, best IoU first (the authors')
    num_parts: int = 2  # parts per image, and part groups
    part_size: int = 224  # side of a part crop, pixels
    fusion_folds: int = 5  # k of the k-fold cross-validation of the fusion weights
    fusion_step: float = 0.1  # grid step of the fusion weights
    fusion_criterion: str = "log_loss"  # what the folds choose by: "log_loss" or "accuracy"
    pretrain: Recipe = Recipe(num_epochs=30, batch_size=32, accum_steps=1, lr=0.05,
                              weight_decay=5e-4, schedule="cosine",
                              label_smoothing=0.1, restore_best=True)  # fmt: skip
    # the networks train a fixed number of epochs on a cosine schedule: nothing is chosen on the
    # validation images, which choose the fusion weights
    classnet: Recipe = Recipe(num_epochs=20, batch_size=16, accum_steps=2, lr=1e-3,
                              weight_decay=1e-5, schedule="cosine")  # fmt: skip
    patches: Recipe = Recipe(num_epochs=10, batch_size=16, accum_steps=2, lr=1e-3,
                             weight_decay=1e-5, schedule="cosine")  # fmt: skip
    objectnet: Recipe = Recipe(num_epochs=10, batch_size=16, accum_steps=2, lr=1e-3,
                               weight_decay=1e-5, schedule="cosine")  # fmt: skip
    partnet: Recipe = Recipe(num_epochs=15, batch_size=8, accum_steps=4, lr=1e-3,
                             weight_decay=1e-5, schedule="cosine")  # fmt: skip

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`), the backbone's name and the thresholds."""
        super().__post_init__()
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")
        if self.saliency not in SALIENCY:
            raise ValueError(f"unknown saliency {self.saliency!r}; choose one of {SALIENCY}")
        if self.proposal_method not in PROPOSAL_METHODS:
            raise ValueError(
                f"unknown proposal_method {self.proposal_method!r}; choose one of "
                f"{PROPOSAL_METHODS}"
            )
        if self.fusion_criterion not in FUSION_CRITERIA:
            raise ValueError(
                f"unknown fusion_criterion {self.fusion_criterion!r}; choose one of "
                f"{FUSION_CRITERIA}"
            )
        if not 0.0 <= self.saliency_threshold < 1.0:
            raise ValueError(
                f"saliency_threshold must be in [0, 1) (the map is scaled to [0, 1]), got "
                f"{self.saliency_threshold}"
            )
        if self.num_parts < 1:
            raise ValueError(f"num_parts must be at least 1, got {self.num_parts}")
        if self.own_boxes < 1:
            raise ValueError(f"own_boxes must be at least 1, got {self.own_boxes}")


PROFILES = {
    "full": Settings(
        profile="full", resize=512, crop=448, attention_size=448,
        synthetic=SYNTHETIC_BIRDS["full"], source=SOURCE_BIRDS["full"],
    ),
    # the backbone, data sizes and pretraining are lab 04's cpu ones: the same backbone
    "cpu": Settings(
        profile="cpu", backbone="small_vgg", width=24, resize=112, crop=96, attention_size=112,
        synthetic=SYNTHETIC_BIRDS["cpu"], source=SOURCE_BIRDS["cpu"],
        proposals=16, patches_per_image=2, part_size=48,
        pretrain=Recipe(num_epochs=20, batch_size=32, accum_steps=1, lr=0.05, weight_decay=5e-4,
                        schedule="cosine", label_smoothing=0.1, restore_best=True),
        classnet=Recipe(num_epochs=8, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                        schedule="cosine"),
        patches=Recipe(num_epochs=2, batch_size=16, accum_steps=2, lr=0.002, weight_decay=1e-5,
                       schedule="cosine"),
        objectnet=Recipe(num_epochs=4, batch_size=16, accum_steps=2, lr=0.003,
                         weight_decay=1e-5, schedule="cosine"),
        partnet=Recipe(num_epochs=6, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                       schedule="cosine"),
    ),
    "smoke": Settings(
        profile="smoke", backbone="small_vgg", width=8, resize=56, crop=48, attention_size=56,
        synthetic=SYNTHETIC_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"], val_fraction=0.2,
        proposals=12, patches_per_image=1, part_size=32, fusion_folds=2, fusion_step=0.25,
        filter_threshold=0.2,
        pretrain=Recipe(num_epochs=1, batch_size=8, accum_steps=1, lr=0.05, weight_decay=5e-4,
                        schedule="cosine", restore_best=True),
        classnet=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5,
                        schedule="cosine"),
        patches=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=0.003, weight_decay=1e-5,
                       schedule="cosine"),
        objectnet=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=0.003, weight_decay=1e-5,
                         schedule="cosine"),
        partnet=Recipe(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5,
                       schedule="cosine"),
    ),
}  # fmt: skip


ENTRY = LabEntry(LAB, TEACHES, PROFILES)
settings, start = ENTRY.settings, ENTRY.start  # settings("cpu", proposals=8); lab = start()


# ---------------------------------------------------------------------------------------------
# data


class Splits(NamedTuple):
    """The lab's images: training (random crops and flips), validation carved from training,
    and test, plus each split's whole images at the attention size (`whole_images`)."""

    data: LabData
    train: CubDataset
    val: CubDataset
    whole_train: CubDataset
    whole_val: CubDataset
    whole_test: CubDataset


def whole_images(dataset: CubDataset, size: int) -> CubDataset:
    """The same images whole: short side resized to `size`, the centre square (the whole image
    for square ones), never flipped, with their true box and parts (`CubDataset`)."""
    return CubDataset(dataset.index, dataset.rows, BirdTransform(size, size, train=False),
                      dataset.crop_to_box, with_geometry=True)  # fmt: skip


def load_splits(settings: Settings, root: str | os.PathLike | None = None) -> Splits:
    """The birds (`load_lab_birds`, printing which), the validation split, the whole images."""
    data = load_lab_birds(settings, root=root)
    train, val = carve_validation(data.train, settings.val_fraction)
    size = settings.attention_size
    return Splits(data, train, val, whole_images(train, size), whole_images(val, size),
                  whole_images(data.test, size))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# networks


def pretrained(
    lab: Lab[Settings], *, root: str | os.PathLike | None = None, progress: bool = True
) -> Pretrained:
    """The backbone every network of the lab starts from (`labkit.labs.pretraining`): VGG-16's
    ImageNet weights when on disk, else labkit's pretraining on the source species, run once
    in this lab's runs folder (`source_backbone`)."""
    s = lab.settings
    return pretrained_backbone(
        s.backbone, s.width, s, s.pretrain, runs_dir=lab.run_dir("source_backbone"),
        imagenet_weights=s.imagenet_weights, val_fraction=s.val_fraction, device=lab.device,
        root=root, progress=progress,
    )  # fmt: skip


def new_partnet(classnet: GAPNet, settings: Settings, num_classes: int) -> PartNet:
    """PartNet on a copy of ClassNet's backbone for the settings' `num_parts` aligned part
    crops (`labkit.attention.pipeline.new_partnet`)."""
    return pipeline.new_partnet(classnet, settings.num_parts, num_classes)


def train_network(
    model: nn.Module,
    recipe: Recipe,
    train_set: Dataset,
    val_set: Dataset,
    lab: Lab[Settings],
    name: str,
    run_info: dict[str, Any],
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """One of the lab's networks, every parameter trained for `recipe`, seeded with the lab's
    seed (`labkit.labs.birds.train_stage`), checkpointed under the lab's runs folder in `name`,
    keyed by `run_info` and the recipe: a finished run only loads. The last epoch is kept and
    nothing stops early: `val_set` is only watched, so that its scores stay honest for
    choosing the fusion weights (`fusion_table`). Returns fit's history."""
    seed_everything(lab.seed)
    return train_stage(model, recipe, train_set, val_set, lab.settings, runs_dir=lab.run_dir(name),
                       run_info=run_info, seed=lab.seed, progress=progress, desc=name)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# patches and attention, at the settings' sizes and thresholds (`labkit.attention.pipeline`)


def propose(
    whole: Dataset, settings: Settings, *, progress: bool = True
) -> tuple[list[torch.Tensor], str]:
    """Candidate patches of every whole image, `settings.proposals` each by the settings'
    method, and the method that made them ("selective search" or "multi-scale windows")."""
    return pipeline.propose(whole, max_patches=settings.proposals,
                            method=settings.proposal_method, progress=progress)  # fmt: skip


def score_patches(
    model: nn.Module,
    whole: Dataset,
    boxes: list[torch.Tensor],
    classes: torch.Tensor,
    settings: Settings,
    *,
    progress: bool = True,
) -> list[torch.Tensor]:
    """For each whole image, the soft-max score of `classes[i]` for each of its patches,
    resized to the training crop (`labkit.attention.pipeline.score_patches`)."""
    return pipeline.score_patches(model, whole, boxes, classes, size=settings.crop,
                                  batch_size=settings.eval_batch_size,
                                  patch_batch_size=settings.patch_batch_size,
                                  progress=progress)  # fmt: skip


def patch_training_set(
    train: CubDataset, whole_train: CubDataset, kept: list[torch.Tensor], settings: Settings
) -> Dataset:
    """ClassNet's training data: the training images plus their kept patches, resized to the
    training crop (`labkit.attention.pipeline.patch_training_set`)."""
    return pipeline.patch_training_set(train, whole_train, kept, settings.crop)


def locate(
    classnet: nn.Module,
    whole: Dataset,
    proposals: list[torch.Tensor],
    settings: Settings,
    *,
    use_labels: bool = False,
    progress: bool = True,
) -> Attention:
    """Object-level attention on every whole image and the patch filter, with the settings'
    saliency map, thresholds and batches (`labkit.attention.pipeline.locate`)."""
    return pipeline.locate(
        classnet, whole, proposals, size=settings.crop, saliency=settings.saliency,
        threshold=settings.saliency_threshold, filter_threshold=settings.filter_threshold,
        batch_size=settings.eval_batch_size, patch_batch_size=settings.patch_batch_size,
        use_labels=use_labels, progress=progress,
    )  # fmt: skip


def _part_rules(settings: Settings) -> dict[str, Any]:
    """The settings' object constraint and number of parts, as the pipeline takes them."""
    return {
        "num_parts": settings.num_parts,
        "min_iou": settings.min_iou,
        "min_inside": settings.min_inside,
        "max_candidates": settings.max_candidates,
    }


def candidate_parts(attention: Attention, i: int, settings: Settings) -> torch.Tensor:
    """Image i's candidate parts under the settings' object constraint
    (`labkit.attention.pipeline.candidate_parts`)."""
    return pipeline.candidate_parts(attention, i, **_part_rules(settings))


def choose_parts(
    classnet: nn.Module,
    whole: Dataset,
    attention: Attention,
    groups: torch.Tensor,
    settings: Settings,
    *,
    progress: bool = True,
) -> Attention:
    """Part-level attention with the settings' number of parts and object constraint: fills
    `attention.parts` and `attention.candidates` (`labkit.attention.pipeline.choose_parts`)."""
    return pipeline.choose_parts(classnet, whole, attention, groups, **_part_rules(settings),
                                 batch_size=settings.eval_batch_size,
                                 progress=progress)  # fmt: skip


def part_groups(classnet: nn.Module, settings: Settings, seed: int = 0) -> torch.Tensor:
    """(C,) the part group of each filter of ClassNet's last convolution, `num_parts` groups
    (`labkit.attention.pipeline.part_groups`)."""
    return pipeline.part_groups(classnet, settings.num_parts, seed=seed)


def fusion_table(
    val_scores: dict[str, torch.Tensor],
    val_labels: torch.Tensor,
    test_scores: dict[str, torch.Tensor],
    test_labels: torch.Tensor,
    settings: Settings,
    seed: int = 0,
) -> tuple[pd.DataFrame, Any]:
    """Test accuracy of each network and of both fusions, the cross-validated weights chosen
    with the settings' folds, grid step and criterion (`labkit.attention.evaluation`)."""
    return evaluation.fusion_table(val_scores, val_labels, test_scores, test_labels,
                                   folds=settings.fusion_folds, step=settings.fusion_step,
                                   criterion=settings.fusion_criterion, seed=seed)  # fmt: skip
