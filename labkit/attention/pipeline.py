"""OPAM's steps run over a data set of whole images, in batches: the networks (ClassNet,
PartNet), candidate patches and their scores, object-level attention (`locate`: the class
activation map, the object box, the patch filter) and part-level attention (`choose_parts`:
object constraint, part selection, alignment by filter groups).

The maths of each step lives in its own module (`proposals`, `filtering`, `saliency`,
`part_selection`, `part_alignment`); this module feeds them whole images and collects what
they find in an `Attention`. Every function takes plain sizes and thresholds; lab 05's module
passes its settings' values.

Used in: labkit.labs.opam (05_opam).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from labkit.attention.crops import BoxCrops
from labkit.attention.filtering import filter_patches, patch_scores
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
from labkit.training.model_utils import eval_mode, model_device

__all__ = [
    "SALIENCY",
    "Attention",
    "cam_layers",
    "candidate_parts",
    "choose_parts",
    "last_convolution",
    "locate",
    "network_scores",
    "new_classnet",
    "new_partnet",
    "part_groups",
    "patch_training_set",
    "propose",
    "score_patches",
]

# "cam": OPAM's class activation map of the predicted class; "activation": the class-agnostic
# sum of the last convolution's maps (SCDA)
SALIENCY = ("cam", "activation")


# ---------------------------------------------------------------------------------------------
# networks


def new_classnet(backbone: nn.Module, num_classes: int) -> GAPNet:
    """ClassNet: a copy of `backbone` (labkit's `TapBackbone`), global average pooling of its
    last map, one linear layer: the shape class activation maps need."""
    return GAPNet(copy.deepcopy(backbone), num_classes)


def new_partnet(classnet: GAPNet, num_parts: int, num_classes: int) -> PartNet:
    """PartNet: a copy of ClassNet's backbone shared by the `num_parts` aligned part crops,
    their pooled features concatenated slot by slot, a new linear layer (`PartNet`)."""
    backbone = copy.deepcopy(classnet.backbone)
    return PartNet(backbone, backbone.channels[-1], num_parts, num_classes)


def cam_layers(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The layer whose output ClassNet's global average pooling reads, and its linear layer:
    what class activation maps need (`labkit.attention.saliency_maps`).

    Raises TypeError for a model without a global-average-pool-plus-linear head.
    """
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
    """The last `nn.Conv2d` of a model: the filters OPAM clusters into part groups.

    Raises TypeError for a model without a convolution.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise TypeError(f"{type(model).__name__} has no convolution to cluster")
    return convs[-1]


def network_scores(model: nn.Module, dataset: Dataset, batch_size: int = 64) -> torch.Tensor:
    """Soft-max scores (N, K) of `model` on every item of `dataset` (eval mode, no autograd,
    the training flag restored)."""
    device = model_device(model)
    scores = []
    with eval_mode(model), torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size):
            scores.append(model(batch[0].to(device)).float().softmax(dim=1).cpu())
    return torch.cat(scores)


def part_groups(classnet: nn.Module, num_parts: int, seed: int = 0) -> torch.Tensor:
    """(C,) the part group of each filter of ClassNet's last convolution (spectral clustering
    of their weights' cosine similarities into `num_parts` groups)."""
    weight = last_convolution(classnet).weight.detach().cpu()
    return cluster_filters(weight, num_parts, seed=seed)


# ---------------------------------------------------------------------------------------------
# patches


def propose(
    whole: Dataset, *, max_patches: int, method: str = "auto", progress: bool = True
) -> tuple[list[torch.Tensor], str]:
    """Candidate patches of every whole image (`propose_patches` with `max_patches` and
    `method`), and the method that made them ("selective search" or "multi-scale windows")."""
    boxes, used = [], ""
    for i in tqdm(range(len(whole)), desc="proposals", disable=not progress, leave=False):
        found = propose_patches(whole[i][0], max_patches=max_patches, method=method)
        boxes.append(found.boxes)
        used = found.method
    return boxes, used


def score_patches(
    model: nn.Module,
    whole: Dataset,
    boxes: list[torch.Tensor],
    classes: torch.Tensor,
    *,
    size: int,
    batch_size: int = 64,
    patch_batch_size: int = 64,
    progress: bool = True,
) -> list[torch.Tensor]:
    """For each whole image, the soft-max score of `classes[i]` for each of its patches,
    resized to `size` (the training crop), images read `batch_size` at a time and patches
    scored `patch_batch_size` at a time (`patch_scores`)."""
    scores: list[torch.Tensor] = []
    loader = DataLoader(whole, batch_size=batch_size)
    start = 0
    for batch in tqdm(loader, desc="scoring patches", disable=not progress, leave=False):
        stop = start + len(batch[0])
        scores += patch_scores(model, batch[0], boxes[start:stop], classes[start:stop],
                               size=size, batch_size=patch_batch_size)  # fmt: skip
        start = stop
    return scores


def patch_training_set(
    train: Dataset, whole_train: Dataset, kept: list[torch.Tensor], size: int
) -> Dataset:
    """ClassNet's training data: the training images (random crops and flips) plus their kept
    patches, each cut from the whole image and resized to `size` (flipped at random)."""
    owners = [i for i, boxes in enumerate(kept) for _ in range(len(boxes))]
    if not owners:
        return train
    boxes = torch.cat([b for b in kept if len(b)])
    patches = BoxCrops(Subset(whole_train, owners), boxes, size, flip=True)
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
        maps: the one of the two `locate`'s `saliency` names, which found the boxes.
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
    *,
    size: int,
    saliency: str = "cam",
    threshold: float = 0.2,
    filter_threshold: float = 0.5,
    batch_size: int = 64,
    patch_batch_size: int = 64,
    use_labels: bool = False,
    progress: bool = True,
) -> Attention:
    """Object-level attention on every whole image, and the patch filter.

    For each image: ClassNet's class activation map of its predicted class and its
    class-agnostic activation map (each scaled to [0, 1]), the object box (the largest region
    of the `saliency` map ("cam" or "activation"), upsampled, at `threshold`: `object_boxes`),
    and the proposals whose soft-max score for the predicted class (the label's with
    `use_labels`, for training images), resized to `size`, passes `filter_threshold`. Images
    are read `batch_size` at a time, patches scored `patch_batch_size` at a time.

    Raises ValueError for a `saliency` not in `SALIENCY`.
    """
    if saliency not in SALIENCY:
        raise ValueError(f"unknown saliency {saliency!r}; choose one of {SALIENCY}")
    _, classifier = cam_layers(classnet)
    keys = ("labels", "probabilities", "predicted", "cams", "activations", "object_boxes",
            "true_boxes", "true_parts", "kept")  # fmt: skip
    out: dict[str, list] = {k: [] for k in keys}
    start = 0
    loader = DataLoader(whole, batch_size=batch_size)
    with eval_mode(classnet):
        bar = tqdm(loader, desc="object attention", disable=not progress, leave=False)
        for images, labels, boxes, true_parts in bar:
            stop = start + len(images)
            logits, features = _features(classnet, images)
            predicted = logits.argmax(dim=1)
            cams = class_activation_maps(features, classifier.weight.detach().float().cpu(),
                                         predicted)  # fmt: skip
            cams, activations = scaled(cams), scaled(activation_maps(features))
            chosen = cams if saliency == "cam" else activations
            maps = _upsampled(chosen, tuple(images.shape[-2:]))
            classes = labels if use_labels else predicted
            scores = patch_scores(classnet, images, proposals[start:stop], classes, size=size,
                                  batch_size=patch_batch_size)  # fmt: skip
            out["kept"] += filter_patches(proposals[start:stop], scores,
                                          threshold=filter_threshold)  # fmt: skip
            out["labels"].append(labels)
            out["probabilities"].append(logits.softmax(dim=1))
            out["predicted"].append(predicted)
            out["cams"].append(cams)
            out["activations"].append(activations)
            out["object_boxes"].append(object_boxes(maps, threshold))
            out["true_boxes"].append(boxes)
            out["true_parts"].append(true_parts)
            start = stop
    fields = {k: torch.cat(v) for k, v in out.items() if k != "kept"}
    maps = fields["cams"] if saliency == "cam" else fields["activations"]
    return Attention(**fields, maps=maps, proposals=list(proposals), kept=out["kept"])


def candidate_parts(
    attention: Attention,
    i: int,
    *,
    num_parts: int = 2,
    min_iou: float = 0.0,
    min_inside: float = 0.4,
    max_candidates: int = 200,
) -> torch.Tensor:
    """Image i's candidate parts: the kept patches that pass the object constraint
    (`object_constraint` with `min_iou`, `min_inside` and `max_candidates`); when fewer than
    `num_parts` do, the proposals that pass it; when still too few, every proposal."""
    box = attention.object_boxes[i]
    for pool in (attention.kept[i], attention.proposals[i]):
        if len(pool) >= num_parts:
            chosen = object_constraint(pool, box, min_iou=min_iou, min_inside=min_inside,
                                       max_parts=max_candidates)  # fmt: skip
            if len(chosen) >= num_parts:
                return pool[chosen]
    return attention.proposals[i]


def choose_parts(
    classnet: nn.Module,
    whole: Dataset,
    attention: Attention,
    groups: torch.Tensor,
    *,
    num_parts: int = 2,
    min_iou: float = 0.0,
    min_inside: float = 0.4,
    max_candidates: int = 200,
    batch_size: int = 64,
    progress: bool = True,
) -> Attention:
    """Part-level attention: for each image the best set of `num_parts` candidate parts
    (`candidate_parts`, then `select_parts` on the part score over the saliency map), aligned:
    each part goes to the filter group (`groups`, from `part_groups`) whose channels respond
    most inside it (`part_responses`, `assign_parts`). Fills `attention.parts` (slot k = group
    k) and `attention.candidates`, and returns it."""
    n = num_parts
    parts, counts = [], []
    start = 0
    loader = DataLoader(whole, batch_size=batch_size)
    with eval_mode(classnet):
        for batch in tqdm(loader, desc="part attention", disable=not progress, leave=False):
            images = batch[0]
            _, features = _features(classnet, images)
            size = tuple(images.shape[-2:])
            maps = _upsampled(attention.maps[start : start + len(images)], size)
            for j in range(len(images)):
                candidates = candidate_parts(attention, start + j, num_parts=n, min_iou=min_iou,
                                             min_inside=min_inside,
                                             max_candidates=max_candidates)  # fmt: skip
                choice = select_parts(candidates, attention.object_boxes[start + j], maps[j], n=n)
                responses = part_responses(features[j], choice.boxes, groups, n, size)
                aligned = torch.empty(n, 4)
                aligned[assign_parts(responses)] = choice.boxes.float()
                parts.append(aligned)
                counts.append(len(candidates))
            start += len(images)
    attention.parts, attention.candidates = torch.stack(parts), torch.tensor(counts)
    return attention
