"""Lab 05's topic, OPAM's object-part attention (Peng, He and Zhao, TIP 2018): patch proposals
and filtering (`proposals`, `filtering`), class activation maps and the object box (`saliency`),
part selection (`part_selection`), part alignment and PartNet (`part_alignment`), fusion of the
three networks' scores (`fusion`), the crops ObjectNet and PartNet train on (`crops`), and the
figure and viewer of one image's attention (`figures`, `viewer`; import them from their modules,
they bring matplotlib). `pipeline` runs the steps over a data set of whole images (ClassNet and
PartNet, `locate`, `choose_parts`) and `evaluation` measures what they found (localisation,
parts against the true parts, the fusion table); import them from their modules too.

Used in: 05_opam.
"""

from labkit.attention.crops import BoxCrops, crop_boxes
from labkit.attention.filtering import (
    crop_patches,
    filter_patches,
    kept_fraction,
    patch_scores,
)
from labkit.attention.fusion import (
    AUTHORS_WEIGHTS,
    FusionChoice,
    choose_fusion_weights,
    fuse_scores,
    weight_grid,
)
from labkit.attention.part_alignment import (
    PartNet,
    aligned_order,
    assign_parts,
    cluster_filters,
    part_responses,
)
from labkit.attention.part_selection import (
    PartChoice,
    box_masks,
    object_constraint,
    pair_scores,
    part_score,
    select_parts,
)
from labkit.attention.proposals import (
    Proposals,
    multiscale_boxes,
    propose_patches,
    selective_search_available,
    selective_search_boxes,
)
from labkit.attention.saliency import (
    Saliency,
    captured_output,
    class_activation_maps,
    localisation_iou,
    object_box,
    object_boxes,
    saliency_maps,
)

__all__ = [
    "AUTHORS_WEIGHTS",
    "BoxCrops",
    "FusionChoice",
    "PartChoice",
    "PartNet",
    "Saliency",
    "aligned_order",
    "assign_parts",
    "box_masks",
    "captured_output",
    "choose_fusion_weights",
    "class_activation_maps",
    "cluster_filters",
    "crop_boxes",
    "fuse_scores",
    "localisation_iou",
    "object_box",
    "object_boxes",
    "object_constraint",
    "pair_scores",
    "part_responses",
    "part_score",
    "saliency_maps",
    "select_parts",
    "weight_grid",
    "Proposals",
    "crop_patches",
    "filter_patches",
    "kept_fraction",
    "multiscale_boxes",
    "patch_scores",
    "propose_patches",
    "selective_search_available",
    "selective_search_boxes",
]
