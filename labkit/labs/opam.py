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
pretrains the settings' backbone once on the synthetic source-task species, in the same runs
folder as lab 04 (the same settings train it once for both labs). `cpu` and `smoke` use a narrow
VGG with batch norm. The three networks train a fixed number of epochs on a cosine schedule,
the last epoch kept: the validation split carved from training chooses only the fusion
weights, never the test set; the synthetic birds' true boxes and parts only score what the
attention found.

Used in: 05_opam.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from labkit.attention.crops import BoxCrops
from labkit.attention.figures import AttentionView
from labkit.attention.filtering import filter_patches, patch_scores
from labkit.attention.fusion import AUTHORS_WEIGHTS, choose_fusion_weights, fuse_scores
from labkit.attention.part_alignment import (
    PartNet,
    assign_parts,
    cluster_filters,
    part_responses,
)
from labkit.attention.part_selection import object_constraint, select_parts
from labkit.attention.proposals import propose_patches
from labkit.attention.saliency import (
    activation_maps,
    captured_output,
    class_activation_maps,
    localisation_iou,
    object_boxes,
    scaled,
)
from labkit.bilinear.heads import GAPNet
from labkit.config import run_dir, seed_everything
from labkit.data.birds import BirdTransform, CubDataset, carve_validation
from labkit.data.datasets import LabData
from labkit.labs.bcnn_hbp import Pretrained, pretrained_backbone
from labkit.labs.birds import SOURCE_BIRDS, SYNTHETIC_BIRDS, BirdsSettings, load_lab_birds
from labkit.labs.session import Lab, start_lab
from labkit.labs.settings import choose, shown
from labkit.training.model_utils import eval_mode, model_device
from labkit.training.recipe import Stage, fit_stage

__all__ = [
    "LAB",
    "PROFILES",
    "Attention",
    "Settings",
    "attention_view",
    "candidate_parts",
    "choose_parts",
    "locate",
    "cam_layers",
    "fusion_table",
    "last_convolution",
    "localised_share",
    "network_scores",
    "new_classnet",
    "new_partnet",
    "pretrained",
    "propose",
    "settings",
    "start",
    "whole_images",
]

LAB = "05_opam"
TEACHES = "object-part attention (OPAM): patches, CAM saliency, object box, parts, fusion"
BACKBONES = ("vgg16", "small_vgg")
# "cam": OPAM's class activation map of the predicted class, every profile's; "activation": the
# class-agnostic sum of the last convolution's maps (SCDA), the notebook's comparison
SALIENCY = ("cam", "activation")
PROPOSAL_METHODS = ("auto", "selective_search", "multiscale")
FUSION_CRITERIA = ("log_loss", "accuracy")
SALIENCY_NAMES = {"cam": "class activation map", "activation": "summed activations"}


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
    proposals: int = field(default=200, metadata=shown("{} patches per image"))  # candidates
    # "auto" (selective search when OpenCV's contrib module is there, else multi-scale windows),
    # "selective_search" or "multiscale" (labkit.attention.propose_patches)
    proposal_method: str = "auto"
    patch_batch_size: int = 64  # patches a forward pass scores (batches of 64 ran fastest on a CPU)
    filter_threshold: float = 0.5  # a patch is kept when its label's soft-max score exceeds this
    patches_per_image: int = 5  # kept patches per training image that ClassNet also trains on
    saliency: str = field(default="cam", metadata=shown("{} saliency"))  # one of SALIENCY
    # binarisation level on the map scaled to [0, 1] from its minimum to its maximum (the CAM
    # paper's 20%, which it takes of the map's maximum)
    saliency_threshold: float = 0.2
    # test images that section 6 boxes with the student's own object_box_from and iou (a search
    # written in Python takes up to a second on a 448 px map)
    own_boxes: int = 500
    min_iou: float = 0.0  # object constraint: a part's IoU with the object box must exceed this
    min_inside: float = 0.4  # ... and more than this fraction of the part inside the object box
    max_candidates: int = 200  # candidate parts kept per image, best IoU first (the authors')
    num_parts: int = 2  # parts per image, and part groups
    part_size: int = 224  # side of a part crop, pixels
    fusion_folds: int = 5  # k of the k-fold cross-validation of the fusion weights
    fusion_step: float = 0.1  # grid step of the fusion weights
    fusion_criterion: str = "log_loss"  # what the folds choose by: "log_loss" or "accuracy"
    pretrain: Stage = Stage(num_epochs=30, batch_size=32, accum_steps=1, lr=0.05,
                            weight_decay=5e-4, schedule="cosine",
                            label_smoothing=0.1)  # fmt: skip
    # the networks train a fixed number of epochs on a cosine schedule: nothing is chosen on the
    # validation images, which choose the fusion weights
    classnet: Stage = Stage(num_epochs=20, batch_size=16, accum_steps=2, lr=1e-3,
                            weight_decay=1e-5, schedule="cosine")  # fmt: skip
    patches: Stage = Stage(num_epochs=10, batch_size=16, accum_steps=2, lr=1e-3,
                           weight_decay=1e-5, schedule="cosine")  # fmt: skip
    objectnet: Stage = Stage(num_epochs=10, batch_size=16, accum_steps=2, lr=1e-3,
                             weight_decay=1e-5, schedule="cosine")  # fmt: skip
    partnet: Stage = Stage(num_epochs=15, batch_size=8, accum_steps=4, lr=1e-3,
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
    # the backbone, data sizes and pretraining are lab 04's cpu ones: one pretraining for both
    "cpu": Settings(
        profile="cpu", backbone="small_vgg", width=24, resize=112, crop=96, attention_size=112,
        synthetic=SYNTHETIC_BIRDS["cpu"], source=SOURCE_BIRDS["cpu"],
        proposals=16, patches_per_image=2, part_size=48,
        pretrain=Stage(num_epochs=20, batch_size=32, accum_steps=1, lr=0.05, weight_decay=5e-4,
                       schedule="cosine", label_smoothing=0.1),
        classnet=Stage(num_epochs=8, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                       schedule="cosine"),
        patches=Stage(num_epochs=2, batch_size=16, accum_steps=2, lr=0.002, weight_decay=1e-5,
                      schedule="cosine"),
        objectnet=Stage(num_epochs=4, batch_size=16, accum_steps=2, lr=0.003,
                        weight_decay=1e-5, schedule="cosine"),
        partnet=Stage(num_epochs=6, batch_size=16, accum_steps=2, lr=0.01, weight_decay=1e-5,
                      schedule="cosine"),
    ),
    "smoke": Settings(
        profile="smoke", backbone="small_vgg", width=8, resize=56, crop=48, attention_size=56,
        synthetic=SYNTHETIC_BIRDS["smoke"], source=SOURCE_BIRDS["smoke"], val_fraction=0.2,
        proposals=12, patches_per_image=1, part_size=32, fusion_folds=2, fusion_step=0.25,
        filter_threshold=0.2,
        pretrain=Stage(num_epochs=1, batch_size=8, accum_steps=1, lr=0.05, weight_decay=5e-4,
                       schedule="cosine"),
        classnet=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5,
                       schedule="cosine"),
        patches=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=0.003, weight_decay=1e-5,
                      schedule="cosine"),
        objectnet=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=0.003, weight_decay=1e-5,
                        schedule="cosine"),
        partnet=Stage(num_epochs=1, batch_size=4, accum_steps=2, lr=0.01, weight_decay=1e-5,
                      schedule="cosine"),
    ),
}  # fmt: skip


def settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Lab 05's settings for `profile` (default: chosen as `labkit.config.profile_name`), with
    single fields overridden, e.g. `settings("cpu", saliency_threshold=0.3)`."""
    return choose(PROFILES, profile, overrides)


def start(profile: str | None = None, *, seed: int = 0, **overrides: Any) -> Lab:
    """The first cell of lab 05: seed, choose settings and device, print one line each."""
    return start_lab(LAB, TEACHES, settings(profile, **overrides), seed=seed)


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


def stacked(dataset: Dataset, indices: list[int] | None = None) -> tuple[torch.Tensor, ...]:
    """Some items of a dataset stacked field by field: images (M, 3, H, W), labels (M,), ..."""
    items = [dataset[i] for i in (indices if indices is not None else range(len(dataset)))]
    return tuple(
        torch.stack([torch.as_tensor(item[k]) for item in items]) for k in range(len(items[0]))
    )


# ---------------------------------------------------------------------------------------------
# networks


def pretrained(
    lab: Lab, *, root: str | os.PathLike | None = None, progress: bool = True
) -> Pretrained:
    """The backbone every network of the lab starts from (see lab 04's `pretrained_backbone`):
    VGG-16's ImageNet weights when on disk, else labkit's pretraining on the source species,
    run once in lab 04's runs folder and shared by the two labs."""
    s: Settings = lab.settings  # type: ignore[assignment]
    runs = run_dir("04_bcnn_hbp", s.profile, "source_backbone")
    return pretrained_backbone(s, device=lab.device, runs_dir=runs, root=root, progress=progress)


def new_classnet(backbone: nn.Module, num_classes: int) -> GAPNet:
    """ClassNet: a copy of `backbone` (labkit's `TapBackbone`), global average pooling of its
    last map, one linear layer: the shape class activation maps need."""
    return GAPNet(copy.deepcopy(backbone), num_classes)


def new_partnet(classnet: GAPNet, settings: Settings, num_classes: int) -> PartNet:
    """PartNet: a copy of ClassNet's backbone shared by the n aligned part crops, their pooled
    features concatenated slot by slot, a new linear layer (`labkit.attention.PartNet`)."""
    backbone = copy.deepcopy(classnet.backbone)
    return PartNet(backbone, backbone.channels[-1], settings.num_parts, num_classes)


def cam_layers(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The layer whose output ClassNet's global average pooling reads, and its linear layer:
    what class activation maps need (`labkit.attention.saliency_maps`)."""
    if isinstance(model, GAPNet):
        return model.backbone.features[-1], model.head.fc
    if isinstance(getattr(model, "layer4", None), nn.Module) and isinstance(
        getattr(model, "fc", None), nn.Linear
    ):
        return model.layer4, model.fc  # labkit's Res2Net, torchvision's ResNets: pool, then fc
    raise TypeError(
        f"{type(model).__name__} has no global-average-pool-plus-linear head: class activation "
        "maps need one (labkit's GAPNet or Res2Net, torchvision's ResNets)"
    )


def last_convolution(model: nn.Module) -> nn.Conv2d:
    """The last `nn.Conv2d` of a model: the filters OPAM clusters into part groups."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise TypeError(f"{type(model).__name__} has no convolution to cluster")
    return convs[-1]


def train_network(
    model: nn.Module,
    stage: Stage,
    train_set: Dataset,
    val_set: Dataset,
    lab: Lab,
    name: str,
    run_info: dict[str, Any],
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """One of the lab's networks, every parameter trained, through `labkit.training.loop.fit`
    (`fit_stage`: SGD and the stage's schedule), checkpointed under the lab's runs folder in
    `name`, keyed by `run_info` and the stage: a finished run only loads. The last epoch is
    kept and nothing stops early: `val_set` is only watched, so that its scores stay honest for
    choosing the fusion weights (`fusion_table`). Returns fit's history."""
    s: Settings = lab.settings  # type: ignore[assignment]
    seed_everything(lab.seed)
    workers = {"num_workers": s.num_workers, "persistent_workers": s.num_workers > 0}
    generator = torch.Generator().manual_seed(lab.seed)
    train_loader = DataLoader(train_set, batch_size=stage.batch_size, shuffle=True,
                              generator=generator, **workers)  # fmt: skip
    val_loader = DataLoader(val_set, batch_size=s.eval_batch_size, **workers)
    return fit_stage(model, stage, train_loader, val_loader, parameters=model.parameters(),
                     runs_dir=lab.run_dir(name), run_info={"seed": lab.seed, **run_info},
                     progress=progress, desc=name, restore_best=False)  # fmt: skip


def network_scores(model: nn.Module, dataset: Dataset, batch_size: int = 64) -> torch.Tensor:
    """Soft-max scores (N, K) of `model` on every item of `dataset` (eval mode, no autograd,
    the training flag restored)."""
    device = model_device(model)
    scores = []
    with eval_mode(model), torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size):
            scores.append(model(batch[0].to(device)).float().softmax(dim=1).cpu())
    return torch.cat(scores)


# ---------------------------------------------------------------------------------------------
# patches


def propose(
    whole: Dataset, settings: Settings, *, progress: bool = True
) -> tuple[list[torch.Tensor], str]:
    """Candidate patches of every whole image (`labkit.attention.propose_patches`), and the
    method that made them ("selective search" or "multi-scale windows")."""
    boxes, method = [], ""
    for i in tqdm(range(len(whole)), desc="proposals", disable=not progress, leave=False):
        found = propose_patches(whole[i][0], max_patches=settings.proposals,
                                method=settings.proposal_method)  # fmt: skip
        boxes.append(found.boxes)
        method = found.method
    return boxes, method


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
    resized to the training crop, scored in batches (`labkit.attention.patch_scores`)."""
    scores: list[torch.Tensor] = []
    loader = DataLoader(whole, batch_size=settings.eval_batch_size)
    start = 0
    for batch in tqdm(loader, desc="scoring patches", disable=not progress, leave=False):
        stop = start + len(batch[0])
        scores += patch_scores(
            model,
            batch[0],
            boxes[start:stop],
            classes[start:stop],
            size=settings.crop,
            batch_size=settings.patch_batch_size,
        )
        start = stop
    return scores


def patch_training_set(train: CubDataset, whole_train: CubDataset, kept: list[torch.Tensor],
                       settings: Settings) -> Dataset:  # fmt: skip
    """ClassNet's training data: the training images (random crops and flips) plus their kept
    patches, each cut from the whole image and resized to the training crop (flipped at
    random)."""
    owners = [i for i, boxes in enumerate(kept) for _ in range(len(boxes))]
    if not owners:
        return train
    boxes = torch.cat([b for b in kept if len(b)])
    patches = BoxCrops(Subset(whole_train, owners), boxes, settings.crop, flip=True)
    return ConcatDataset([train, patches])


# ---------------------------------------------------------------------------------------------
# attention


@dataclass
class Attention:
    """What object- and part-level attention found on N whole images.

    Attributes:
        labels: (N,) the true labels (used to score, never to find anything).
        probabilities: (N, K) ClassNet's soft-max scores of the whole images.
        predicted: (N,) the class whose activation map was taken.
        cams: (N, h, w) the class activation maps of the predicted class, and
        activations: (N, h, w) the class-agnostic maps, both at the feature grid, in [0, 1];
        maps: the one of the two the settings' `saliency` names, which found the boxes.
        object_boxes: (N, 4) the boxes found; true_boxes (N, 4), true_parts (N, P, 3).
        proposals: the candidate patches of each image; kept: those the filter kept (their
            score for the predicted class, or the label for training images, passed it).
        parts: (N, n, 4) the chosen parts in aligned order (slot k = part group k), and
        candidates: (N,) how many patches passed the object constraint; both None until
            `choose_parts`.
    """

    labels: torch.Tensor
    probabilities: torch.Tensor
    predicted: torch.Tensor
    cams: torch.Tensor
    activations: torch.Tensor
    maps: torch.Tensor
    object_boxes: torch.Tensor
    true_boxes: torch.Tensor
    true_parts: torch.Tensor
    proposals: list[torch.Tensor]
    kept: list[torch.Tensor]
    parts: torch.Tensor | None = None
    candidates: torch.Tensor | None = None

    @property
    def iou(self) -> torch.Tensor:
        """(N,) the IoU of each found object box with the true box."""
        return localisation_iou(self.object_boxes, self.true_boxes)

    def saliency(self, i: int, size: tuple[int, int]) -> torch.Tensor:
        """Image i's map upsampled (bilinear) to `size` (H, W), in [0, 1]."""
        return _upsampled(self.maps[i : i + 1], size)[0]


def _upsampled(cams: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) maps in [0, 1] -> (N, H, W), bilinear."""
    maps = nn.functional.interpolate(cams[:, None], size=size, mode="bilinear",
                                     align_corners=False)[:, 0]  # fmt: skip
    return maps.clamp(0.0, 1.0)


def _features(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the last convolution's maps (what global average pooling reads), on the CPU."""
    feature_layer, _ = cam_layers(model)
    device = model_device(model)
    with torch.no_grad(), captured_output(feature_layer) as captured:
        logits = model(images.to(device))
    return logits.float().cpu(), captured[-1].float().cpu()


def locate(
    classnet: nn.Module,
    whole: Dataset,
    proposals: list[torch.Tensor],
    settings: Settings,
    *,
    use_labels: bool = False,
    progress: bool = True,
) -> Attention:
    """Object-level attention on every whole image, and the patch filter.

    For each image: ClassNet's class activation map of its predicted class and its
    class-agnostic activation map (each scaled to [0, 1]), the object box (the largest region
    of the settings' map, upsampled, at `settings.saliency_threshold`: `object_boxes`), and
    the proposals whose soft-max score for the predicted class (the label's with
    `use_labels`, for training images) passes `settings.filter_threshold`.
    """
    _, classifier = cam_layers(classnet)
    keys = ("labels", "probabilities", "predicted", "cams", "activations", "object_boxes",
            "true_boxes", "true_parts", "kept")  # fmt: skip
    out: dict[str, list] = {k: [] for k in keys}
    start = 0
    loader = DataLoader(whole, batch_size=settings.eval_batch_size)
    with eval_mode(classnet):
        bar = tqdm(loader, desc="object attention", disable=not progress, leave=False)
        for images, labels, boxes, true_parts in bar:
            stop = start + len(images)
            logits, features = _features(classnet, images)
            predicted = logits.argmax(dim=1)
            cams = class_activation_maps(features, classifier.weight.detach().float().cpu(),
                                         predicted)  # fmt: skip
            cams, activations = scaled(cams), scaled(activation_maps(features))
            chosen = cams if settings.saliency == "cam" else activations
            maps = _upsampled(chosen, tuple(images.shape[-2:]))
            classes = labels if use_labels else predicted
            scores = patch_scores(
                classnet,
                images,
                proposals[start:stop],
                classes,
                size=settings.crop,
                batch_size=settings.patch_batch_size,
            )
            out["kept"] += filter_patches(proposals[start:stop], scores,
                                          threshold=settings.filter_threshold)  # fmt: skip
            out["labels"].append(labels)
            out["probabilities"].append(logits.softmax(dim=1))
            out["predicted"].append(predicted)
            out["cams"].append(cams)
            out["activations"].append(activations)
            out["object_boxes"].append(object_boxes(maps, settings.saliency_threshold))
            out["true_boxes"].append(boxes)
            out["true_parts"].append(true_parts)
            start = stop
    fields = {k: torch.cat(v) for k, v in out.items() if k != "kept"}
    maps = fields["cams"] if settings.saliency == "cam" else fields["activations"]
    return Attention(**fields, maps=maps, proposals=list(proposals), kept=out["kept"])


def localised_share(maps: torch.Tensor, true_boxes: torch.Tensor, threshold: float) -> float:
    """The share of images that their maps localise: the object box of each (N, H, W) map at
    `threshold` (`object_boxes`) has an IoU of at least 0.5 with its true box (N, 4)."""
    boxes = object_boxes(maps, threshold)
    return float((localisation_iou(boxes, true_boxes) >= 0.5).float().mean())


def candidate_parts(attention: Attention, i: int, settings: Settings) -> torch.Tensor:
    """Image i's candidate parts: the kept patches that pass the object constraint
    (`object_constraint` with the settings' min_iou, min_inside, max_candidates); when fewer
    than n do, the proposals that pass it; when still too few, every proposal."""
    box = attention.object_boxes[i]
    for pool in (attention.kept[i], attention.proposals[i]):
        if len(pool) >= settings.num_parts:
            chosen = object_constraint(pool, box, min_iou=settings.min_iou,
                                       min_inside=settings.min_inside,
                                       max_parts=settings.max_candidates)  # fmt: skip
            if len(chosen) >= settings.num_parts:
                return pool[chosen]
    return attention.proposals[i]


def choose_parts(
    classnet: nn.Module,
    whole: Dataset,
    attention: Attention,
    groups: torch.Tensor,
    settings: Settings,
    *,
    progress: bool = True,
) -> Attention:
    """Part-level attention: for each image the best set of n candidate parts
    (`candidate_parts`, then `select_parts` on the part score over the saliency map), aligned:
    each part goes to the filter group (`groups`, from `part_groups`) whose channels respond
    most inside it (`part_responses`, `assign_parts`). Fills `attention.parts` (slot k = group
    k) and `attention.candidates`, and returns it."""
    n = settings.num_parts
    parts, counts = [], []
    start = 0
    loader = DataLoader(whole, batch_size=settings.eval_batch_size)
    with eval_mode(classnet):
        for batch in tqdm(loader, desc="part attention", disable=not progress, leave=False):
            images = batch[0]
            _, features = _features(classnet, images)
            size = tuple(images.shape[-2:])
            maps = _upsampled(attention.maps[start : start + len(images)], size)
            for j in range(len(images)):
                candidates = candidate_parts(attention, start + j, settings)
                choice = select_parts(candidates, attention.object_boxes[start + j], maps[j], n=n)
                responses = part_responses(features[j], choice.boxes, groups, n, size)
                aligned = torch.empty(n, 4)
                aligned[assign_parts(responses)] = choice.boxes.float()
                parts.append(aligned)
                counts.append(len(candidates))
            start += len(images)
    attention.parts, attention.candidates = torch.stack(parts), torch.tensor(counts)
    return attention


def attention_view(
    attention: Attention,
    whole: Dataset,
    i: int,
    class_names: tuple[str, ...],
    saliency: str = "cam",
) -> AttentionView:
    """Everything found on image i, for `labkit.attention.viewer.attention_viewer` and
    `render_attention`: proposals, kept patches, map, object and true boxes, aligned parts
    (their slot is their group) and true part locations. `saliency` names the map the
    attention used (the settings' `saliency`), for the figure's title."""
    image = whole[i][0]
    parts = attention.parts[i] if attention.parts is not None else None
    return AttentionView(
        image=image,
        proposals=attention.proposals[i],
        kept=attention.kept[i],
        saliency=attention.saliency(i, tuple(image.shape[-2:])),
        object_box=attention.object_boxes[i],
        true_box=attention.true_boxes[i],
        iou=float(attention.iou[i]),
        parts=parts,
        groups=None if parts is None else torch.arange(len(parts)),
        true_parts=attention.true_parts[i],
        label=class_names[int(attention.labels[i])],
        predicted=class_names[int(attention.predicted[i])],
        saliency_name=SALIENCY_NAMES[saliency],
    )


def part_groups(classnet: nn.Module, settings: Settings, seed: int = 0) -> torch.Tensor:
    """(C,) the part group of each filter of ClassNet's last convolution (spectral clustering
    of their weights' cosine similarities into `num_parts` groups)."""
    weight = last_convolution(classnet).weight.detach().cpu()
    return cluster_filters(weight, settings.num_parts, seed=seed)


def parts_cover(attention: Attention) -> pd.DataFrame:
    """How the chosen parts sit on the true part locations, per image: how many of them hold
    at least one visible true part location, and whether any / every one does."""
    xy, visible = attention.true_parts[..., :2], attention.true_parts[..., 2] > 0  # (N, P, 2)
    boxes = attention.parts  # (N, n, 4)
    x, y = xy[:, None, :, 0], xy[:, None, :, 1]  # (N, 1, P)
    inside = ((x >= boxes[..., 0:1]) & (x < boxes[..., 2:3]) & (y >= boxes[..., 1:2])
              & (y < boxes[..., 3:4]) & visible[:, None])  # (N, n, P)  # fmt: skip
    covering = inside.any(dim=2)  # (N, n)
    return pd.DataFrame({
        "parts holding a true part": covering.sum(dim=1).numpy(),
        "any part": covering.any(dim=1).numpy(),
        "every part": covering.all(dim=1).numpy(),
    })  # fmt: skip


def group_contents(attention: Attention, part_names: tuple[str, ...]) -> pd.DataFrame:
    """For each part group (aligned slot), the share of images whose part in that slot holds
    each true part location (rows: true parts, columns: groups)."""
    xy, visible = attention.true_parts[..., :2], attention.true_parts[..., 2] > 0
    boxes = attention.parts
    x, y = xy[:, None, :, 0], xy[:, None, :, 1]
    inside = ((x >= boxes[..., 0:1]) & (x < boxes[..., 2:3]) & (y >= boxes[..., 1:2])
              & (y < boxes[..., 3:4]) & visible[:, None])  # (N, n, P)  # fmt: skip
    share = inside.float().mean(dim=0).T.numpy()  # (P, n)
    return pd.DataFrame(share, index=list(part_names),
                        columns=[f"group {k}" for k in range(boxes.shape[1])])  # fmt: skip


def fusion_table(
    val_scores: dict[str, torch.Tensor],
    val_labels: torch.Tensor,
    test_scores: dict[str, torch.Tensor],
    test_labels: torch.Tensor,
    settings: Settings,
    seed: int = 0,
) -> tuple[pd.DataFrame, Any]:
    """Test accuracy of each network, of the authors' fixed fusion and of the fusion whose
    weights k-fold cross-validation chose on the validation split.

    `val_scores` and `test_scores` map "ClassNet", "ObjectNet", "PartNet" to (N, K) soft-max
    scores. Returns the table and the `FusionChoice`.
    """
    names = ("ClassNet", "ObjectNet", "PartNet")
    choice = choose_fusion_weights([val_scores[k] for k in names], val_labels,
                                   n_splits=settings.fusion_folds, step=settings.fusion_step,
                                   seed=seed, softmax=False,
                                   criterion=settings.fusion_criterion)  # fmt: skip
    rows = []
    for name in names:
        weights = [1.0 if k == name else 0.0 for k in names]
        rows.append((name, weights))
    rows.append(("fusion, authors' weights", list(AUTHORS_WEIGHTS)))
    rows.append(("fusion, cross-validated weights", [float(w) for w in choice.weights]))
    table = []
    for name, weights in rows:
        fused = fuse_scores([test_scores[k] for k in names], weights, softmax=False)
        val_fused = fuse_scores([val_scores[k] for k in names], weights, softmax=False)
        table.append({
            "scores": name,
            "weights (ClassNet, ObjectNet, PartNet)": tuple(round(w, 2) for w in weights),
            "validation acc": float((val_fused.argmax(1) == val_labels).float().mean()),
            "test acc": float((fused.argmax(1) == test_labels).float().mean()),
        })  # fmt: skip
    return pd.DataFrame(table).set_index("scores"), choice
