"""How well OPAM's attention and fusion did, measured against what the finding never used: the
share of images whose saliency maps localise the bird, where the chosen parts sit on the true
part locations, the networks' and the fusions' accuracies; and the view of one image's
findings for the figure and the viewer.

Used in: labkit.labs.opam (05_opam).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch.utils.data import Dataset

from labkit.attention.figures import AttentionView
from labkit.attention.fusion import AUTHORS_WEIGHTS, choose_fusion_weights, fuse_scores
from labkit.attention.pipeline import Attention
from labkit.attention.saliency import localisation_iou, object_boxes

__all__ = [
    "NETWORKS",
    "SALIENCY_NAMES",
    "attention_view",
    "fusion_table",
    "group_contents",
    "localised_share",
    "parts_cover",
]

NETWORKS = ("ClassNet", "ObjectNet", "PartNet")  # the scores fusion combines, in this order
SALIENCY_NAMES = {"cam": "class activation map", "activation": "summed activations"}


def localised_share(maps: torch.Tensor, true_boxes: torch.Tensor, threshold: float) -> float:
    """The share of images that their maps localise: the object box of each (N, H, W) map at
    `threshold` (`object_boxes`) has an IoU of at least 0.5 with its true box (N, 4)."""
    boxes = object_boxes(maps, threshold)
    return float((localisation_iou(boxes, true_boxes) >= 0.5).float().mean())


def _inside(attention: Attention) -> torch.Tensor:
    """(N, n, P) whether each chosen part (N, n, 4) holds each visible true part location."""
    xy, visible = attention.true_parts[..., :2], attention.true_parts[..., 2] > 0  # (N, P, 2)
    boxes = attention.parts  # (N, n, 4)
    if boxes is None:
        raise ValueError("no parts chosen yet: run choose_parts first")
    x, y = xy[:, None, :, 0], xy[:, None, :, 1]  # (N, 1, P)
    return ((x >= boxes[..., 0:1]) & (x < boxes[..., 2:3]) & (y >= boxes[..., 1:2])
            & (y < boxes[..., 3:4]) & visible[:, None])  # fmt: skip


def parts_cover(attention: Attention) -> pd.DataFrame:
    """How the chosen parts sit on the true part locations, per image: how many of them hold
    at least one visible true part location, and whether any / every one does.

    Raises ValueError before `choose_parts` has filled `attention.parts`.
    """
    covering = _inside(attention).any(dim=2)  # (N, n)
    return pd.DataFrame({
        "parts holding a true part": covering.sum(dim=1).numpy(),
        "any part": covering.any(dim=1).numpy(),
        "every part": covering.all(dim=1).numpy(),
    })  # fmt: skip


def group_contents(attention: Attention, part_names: tuple[str, ...]) -> pd.DataFrame:
    """For each part group (aligned slot), the share of images whose part in that slot holds
    each true part location (rows: true parts, columns: groups).

    Raises ValueError before `choose_parts` has filled `attention.parts`.
    """
    inside = _inside(attention)  # (N, n, P)
    share = inside.float().mean(dim=0).T.numpy()  # (P, n)
    return pd.DataFrame(share, index=list(part_names),
                        columns=[f"group {k}" for k in range(inside.shape[1])])  # fmt: skip


def fusion_table(
    val_scores: dict[str, torch.Tensor],
    val_labels: torch.Tensor,
    test_scores: dict[str, torch.Tensor],
    test_labels: torch.Tensor,
    *,
    folds: int = 5,
    step: float = 0.1,
    criterion: str = "log_loss",
    seed: int = 0,
) -> tuple[pd.DataFrame, Any]:
    """Test accuracy of each network, of the authors' fixed fusion and of the fusion whose
    weights k-fold cross-validation chose on the validation split (`choose_fusion_weights`
    with `folds`, a grid of `step` and `criterion`).

    `val_scores` and `test_scores` map "ClassNet", "ObjectNet", "PartNet" to (N, K) soft-max
    scores. Returns the table and the `FusionChoice`.
    """
    choice = choose_fusion_weights([val_scores[k] for k in NETWORKS], val_labels,
                                   n_splits=folds, step=step, seed=seed, softmax=False,
                                   criterion=criterion)  # fmt: skip
    rows = [(name, [1.0 if k == name else 0.0 for k in NETWORKS]) for name in NETWORKS]
    rows.append(("fusion, authors' weights", list(AUTHORS_WEIGHTS)))
    rows.append(("fusion, cross-validated weights", [float(w) for w in choice.weights]))
    table = []
    for name, weights in rows:
        fused = fuse_scores([test_scores[k] for k in NETWORKS], weights, softmax=False)
        val_fused = fuse_scores([val_scores[k] for k in NETWORKS], weights, softmax=False)
        table.append({
            "scores": name,
            "weights (ClassNet, ObjectNet, PartNet)": tuple(round(w, 2) for w in weights),
            "validation acc": float((val_fused.argmax(1) == val_labels).float().mean()),
            "test acc": float((fused.argmax(1) == test_labels).float().mean()),
        })  # fmt: skip
    return pd.DataFrame(table).set_index("scores"), choice


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
    attention used ("cam" or "activation"), for the figure's title."""
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
