"""OPAM's part alignment and PartNet: the k-th part of every image is the same kind of thing,
and one classifier reads the parts slot by slot.

Handout 004 §1.5.3 (Peng, He and Zhao, TIP 2018): the parts `labkit.attention.part_selection`
chose are aligned by clustering the filters of ClassNet's last convolution (`cluster_filters`)
and giving each part the cluster that responds to it most (`part_responses`, `assign_parts`,
`aligned_order`), so that slot k of every image holds the same kind of part (a head group, a
body group, ...). PartNet keeps that order: one shared backbone runs on every crop, each crop's
last feature map is average-pooled, and the n vectors are concatenated in their aligned order
(slot k = group k) before one linear layer, so the classifier has separate weights for the head
slot and the body slot.

Boxes are float tensors (x1, y1, x2, y2) in pixels with x2 / y2 exclusive, as in
`labkit.attention.part_selection`.

Used in: 05_opam.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from labkit.attention.part_selection import _axis_masks, _check_boxes

__all__ = ["PartNet", "aligned_order", "assign_parts", "cluster_filters", "part_responses"]


def cluster_filters(weight: torch.Tensor, n_groups: int, *, seed: int = 0) -> torch.Tensor:
    """Group the filters of a layer by the cosine similarity of their weights (part clusters).

    Spectral clustering (scikit-learn, affinity="precomputed") on max(cos, 0): a filter whose
    weights point away from another's responds to the opposite pattern, not to the same part,
    so negative similarities count as no affinity at all. The diagonal is set to 1 so that a
    zero filter is not an isolated node. Groups are numbered by their lowest filter index
    (filter 0 is in group 0), so the labels do not depend on the solver's numbering.

    Args:
        weight: (C_out, C_in, kh, kw) convolution weights, or (C_out, D).
        n_groups: how many groups (parts), 1 <= n_groups <= C_out.
        seed: the solver's random_state.

    Returns:
        int64 (C_out,) the group of each filter; every group in 0 .. n_groups - 1 is non-empty.

    Raises:
        ValueError: bad shape or n_groups, or fewer distinct groups found than asked.
    """
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics.pairwise import cosine_similarity

    if weight.ndim < 2:
        raise ValueError(
            f"weight must be (C_out, C_in, kh, kw) or (C_out, D); got {tuple(weight.shape)}"
        )
    if not 1 <= n_groups <= len(weight):
        raise ValueError(f"n_groups must be in 1 .. {len(weight)} (the filters), got {n_groups}")
    if n_groups == 1:
        return torch.zeros(len(weight), dtype=torch.long)
    vectors = weight.detach().flatten(1).double().cpu().numpy()  # (C_out, D)
    affinity = np.clip(cosine_similarity(vectors), 0.0, None)
    np.fill_diagonal(affinity, 1.0)
    labels = SpectralClustering(n_groups, affinity="precomputed", random_state=seed).fit_predict(
        affinity
    )
    _, first = np.unique(labels, return_index=True)  # first filter of each label
    if len(first) < n_groups:
        raise ValueError(
            f"spectral clustering found {len(first)} distinct groups of filters, not {n_groups}; "
            "ask for fewer groups"
        )
    renumber = np.empty(n_groups, dtype=np.int64)
    renumber[labels[np.sort(first)]] = np.arange(n_groups)
    return torch.from_numpy(renumber[labels])


def part_responses(
    feature_map: torch.Tensor,
    parts: torch.Tensor,
    groups: torch.Tensor,
    n_groups: int,
    image_size: tuple[int, int],
) -> torch.Tensor:
    """How strongly each group of filters responds inside each part.

    A part box is scaled from the image (H, W) onto the feature grid (h, w) and covers the cells
    whose centres lie inside it; a box narrower than a cell along an axis covers the one cell
    holding its centre there, so every part covers at least one cell. The response of a part to
    a group is the part's mean activation of each channel, summed over the group's channels.

    Args:
        feature_map: (C, h, w) ClassNet's last convolution on the image.
        parts: (n, 4) boxes in image pixels.
        groups: (C,) the group of each channel (`cluster_filters`).
        n_groups: the number of groups.
        image_size: (H, W) of the image the boxes refer to.

    Returns:
        (n, n_groups) responses.
    """
    parts = _check_boxes(parts, "parts")
    if feature_map.ndim != 3:
        raise ValueError(f"feature_map must be (C, h, w); got {tuple(feature_map.shape)}")
    if groups.shape != (len(feature_map),):
        raise ValueError(
            f"groups must be ({len(feature_map)},), one per channel; got {tuple(groups.shape)}"
        )
    if len(groups) and not 0 <= int(groups.min()) <= int(groups.max()) < n_groups:
        raise ValueError(
            f"groups must lie in 0 .. {n_groups - 1}; got "
            f"{int(groups.min())} .. {int(groups.max())}"
        )
    (_, h, w), (height, width) = feature_map.shape, image_size
    scale = torch.tensor([w / width, h / height, w / width, h / height], device=feature_map.device)
    boxes = parts.to(feature_map.device) * scale  # (n, 4) on the feature grid
    rows = _at_least_one_cell(_axis_masks(boxes[:, 1], boxes[:, 3], h), boxes[:, 1], boxes[:, 3])
    cols = _at_least_one_cell(_axis_masks(boxes[:, 0], boxes[:, 2], w), boxes[:, 0], boxes[:, 2])
    masks = (rows[:, :, None] & cols[:, None, :]).to(feature_map.dtype)  # (n, h, w)
    means = torch.einsum("nhw,chw->nc", masks, feature_map) / masks.sum(dim=(1, 2))[:, None]
    member = torch.nn.functional.one_hot(groups.long().to(feature_map.device), n_groups)  # (C, G)
    return means @ member.to(means.dtype)  # (n, G)


def _at_least_one_cell(masks: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Give the empty rows of masks (K, size) the cell holding the centre of [lo, hi)."""
    centre = ((lo + hi) / 2).floor().long().clamp(0, masks.shape[1] - 1)
    empty = ~masks.any(dim=1)
    masks = masks.clone()
    masks[empty, centre[empty]] = True
    return masks


def assign_parts(responses: torch.Tensor) -> torch.Tensor:
    """The group of each part, from their responses (n, n_groups).

    With as many parts as groups the assignment is one-to-one (scipy's linear_sum_assignment,
    maximising the total response): each group's slot then holds exactly one part of every
    image, so PartNet sees the same kind of part (head, body) in the same slot. Otherwise each
    part takes its strongest group (argmax), and two parts may share a group.

    Returns:
        int64 (n,), a permutation of 0 .. n - 1 when n == n_groups.
    """
    from scipy.optimize import linear_sum_assignment

    if responses.ndim != 2 or responses.shape[0] < 1:
        raise ValueError(
            f"responses must be (n, n_groups) with n >= 1; got {tuple(responses.shape)}"
        )
    if responses.shape[0] != responses.shape[1]:
        return responses.argmax(dim=1)
    _, columns = linear_sum_assignment(responses.detach().double().cpu().numpy(), maximize=True)
    return torch.from_numpy(columns).long().to(responses.device)


def aligned_order(assignment: torch.Tensor) -> torch.Tensor:
    """The order that puts group k's part in slot k: `parts[aligned_order(assign_parts(r))]`.

    Args:
        assignment: (n,) a permutation of 0 .. n - 1 (one-to-one `assign_parts`).

    Returns:
        int64 (n,) indices into the parts.
    """
    if assignment.ndim != 1 or not torch.equal(
        assignment.sort().values.cpu(), torch.arange(len(assignment))
    ):
        raise ValueError(
            f"aligned_order needs a permutation of 0 .. n - 1 (as many parts as groups), got "
            f"{assignment.tolist()}"
        )
    return assignment.argsort()


class PartNet(nn.Module):
    """A shared backbone over n aligned part crops, the crops' pooled features concatenated,
    one linear classifier.

    Args:
        backbone: maps (M, 3, s, s) to the last feature map (M, C, h, w), or to a list of maps
            whose last is it (labkit's `TapBackbone`).
        channels: C.
        num_parts: n, the crops per image.
        num_classes: K.
    Input (N, n, 3, s, s); output (N, K) logits.
    Raises ValueError for an input whose part count is not n.
    """

    def __init__(self, backbone: nn.Module, channels: int, num_parts: int, num_classes: int):
        super().__init__()
        if num_parts < 1:
            raise ValueError(f"PartNet needs at least one part, got num_parts={num_parts}")
        self.backbone, self.num_parts = backbone, num_parts
        self.fc = nn.Linear(num_parts * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.dim() != 5 or x.shape[1] != self.num_parts:
            raise ValueError(
                f"PartNet expects (N, {self.num_parts}, 3, s, s) aligned crops, got "
                f"{tuple(x.shape)}"
            )
        n, parts = x.shape[:2]
        maps = self.backbone(x.flatten(0, 1))
        last = maps[-1] if isinstance(maps, (list, tuple)) else maps  # (N * n, C, h, w)
        pooled = last.mean(dim=(2, 3)).reshape(n, parts * last.shape[1])  # slot-major
        return self.fc(pooled)
