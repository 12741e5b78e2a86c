"""OPAM's part selection: among the proposals of one image, the parts that lie on the object and
spread over it.

Handout 004 §1.5.3 (Peng, He and Zhao, TIP 2018):

1. the object spatial constraint keeps the patches that lie on the object box
   (`object_constraint`);
2. the part spatial constraint scores a set of n parts by
   Δ_part(P) = log(A_U - A_I - A_O) + log(mean saliency over the union) and the best set wins
   (`part_score`, `pair_scores`, `select_parts`).

The chosen parts are then aligned across images by `labkit.attention.part_alignment`.

Boxes are float tensors (x1, y1, x2, y2) in pixels with x2 / y2 exclusive. On an H x W grid a
box covers the pixels whose centres (x + 0.5, y + 0.5) lie inside it: x1 <= x + 0.5 < x2 and
y1 <= y + 0.5 < y2. A saliency map is a float tensor (H, W) in [0, 1] at the image's size.

Used in: 05_opam.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch
from torchvision.ops import box_iou

__all__ = [
    "PartChoice",
    "box_masks",
    "object_constraint",
    "pair_scores",
    "part_score",
    "select_parts",
]

# Elements of one (C, band) float32 mask block in `pair_scores`: 2**21 floats = 8 MiB, of
# which its (3C, band) buffer holds three.
_BAND_ELEMENTS = 2**21
# Elements of one (sets, subsets, n) block when `select_parts` scores sets (x 2 int64
# coordinates, for the lower and the upper corners: 16 MiB each).
_SET_ELEMENTS = 2**20
# The saliency unit of the integer summed-area table: 2**-32 (no overflow below 2**31 pixels).
_UNIT = 2.0**-32


class PartChoice(NamedTuple):
    """The parts `select_parts` keeps for one image."""

    indices: torch.Tensor  # (n,) int64 rows of the candidates, ascending
    boxes: torch.Tensor  # (n, 4) those candidates
    score: float  # Δ_part of the set; -inf when no set was valid (see `select_parts`)


# ----------------------------------------------------------------------------- boxes


def _check_boxes(boxes: torch.Tensor, name: str) -> torch.Tensor:
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must be boxes (K, 4) as x1, y1, x2, y2; got {tuple(boxes.shape)}")
    return boxes.float()


def _check_box(box: torch.Tensor, name: str = "object_box") -> torch.Tensor:
    if box.shape != (4,):
        raise ValueError(f"{name} must be one box (4,) as x1, y1, x2, y2; got {tuple(box.shape)}")
    return box.float()


def _check_saliency(saliency: torch.Tensor) -> torch.Tensor:
    if saliency.ndim != 2:
        raise ValueError(f"saliency must be a map (H, W); got {tuple(saliency.shape)}")
    return saliency


def _axis_masks(lo: torch.Tensor, hi: torch.Tensor, size: int) -> torch.Tensor:
    """Which of `size` cells along one axis have their centre c + 0.5 in [lo, hi): (K, size)."""
    centres = torch.arange(size, device=lo.device, dtype=lo.dtype) + 0.5
    return (centres >= lo[:, None]) & (centres < hi[:, None])


def _rows_cols(boxes: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The row (K, H) and column (K, W) indicators whose outer product is each box's mask."""
    return _axis_masks(boxes[:, 1], boxes[:, 3], height), _axis_masks(
        boxes[:, 0], boxes[:, 2], width
    )


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Rasterise boxes on a height x width grid.

    A box covers the pixels whose centres lie inside it: x1 <= x + 0.5 < x2 and
    y1 <= y + 0.5 < y2 (x2, y2 exclusive), so a box of integer corners covers exactly
    columns x1 .. x2 - 1; parts outside the grid are cut off.

    Args:
        boxes: (K, 4) x1, y1, x2, y2 in pixels.
        height, width: the grid's size.

    Returns:
        bool (K, height, width).
    """
    rows, cols = _rows_cols(_check_boxes(boxes, "boxes"), height, width)
    return rows[:, :, None] & cols[:, None, :]  # (K, H, W)


# ------------------------------------------------------------- object spatial constraint


def object_constraint(
    patches: torch.Tensor,
    object_box: torch.Tensor,
    *,
    min_iou: float,
    min_inside: float,
    max_parts: int,
) -> torch.Tensor:
    """Indices of the patches that lie on the object: the object spatial constraint f_b.

    A patch is kept when its IoU with the object box is > `min_iou` and the fraction of its own
    area inside the object box is > `min_inside`; the kept patches are ordered by IoU, highest
    first (ties: lower index first), and at most `max_parts` are returned. Areas are those of
    the continuous boxes (torchvision's `box_iou`), not of rasterised masks.

    The lab's issue quotes the authors as min_iou=0.7, min_inside=0.4, max_parts=200. Note
    that IoU > t already implies an inside fraction > t (intersection >= IoU x patch area), so
    `min_inside` only bites when it exceeds `min_iou`.

    Args:
        patches: (P, 4) candidate boxes (the filtered proposals).
        object_box: (4,) the object region from the object-level attention.
        min_iou, min_inside: strict lower bounds in [0, 1].
        max_parts: how many patches to keep at most.

    Returns:
        int64 (K,) with K <= max_parts, indices into `patches`.
    """
    patches, object_box = _check_boxes(patches, "patches"), _check_box(object_box)
    if max_parts < 0:
        raise ValueError(f"max_parts must be >= 0, got {max_parts}")
    iou = box_iou(patches, object_box[None])[:, 0]  # (P,)
    lo = torch.maximum(patches[:, :2], object_box[:2])  # (P, 2) the overlaps' corners
    hi = torch.minimum(patches[:, 2:], object_box[2:])
    inter = (hi - lo).clamp(min=0).prod(dim=1)  # (P,)
    area = (patches[:, 2:] - patches[:, :2]).clamp(min=0).prod(dim=1)
    inside = torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(area))
    kept = torch.nonzero((iou > min_iou) & (inside > min_inside)).flatten()
    order = torch.sort(iou[kept], descending=True, stable=True).indices
    return kept[order][:max_parts]


# --------------------------------------------------------------- part spatial constraint


def _delta_part(
    spread: torch.Tensor, sal_union: torch.Tensor, a_union: torch.Tensor
) -> torch.Tensor:
    """log(A_U - A_I - A_O) + log(saliency sum / A_U), -inf where either log is undefined."""
    valid = (spread > 0) & (sal_union > 0)
    score = torch.log(spread.clamp(min=1)) + torch.log(
        sal_union.clamp(min=1e-300) / a_union.clamp(min=1)
    )
    return torch.where(valid, score, torch.full_like(score, -math.inf))


def part_score(parts: torch.Tensor, object_box: torch.Tensor, saliency: torch.Tensor) -> float:
    """The part spatial constraint Δ_part of one set of n parts, from their masks.

    Δ_part(P) = log(A_U - A_I - A_O) + log(mean saliency over the union), with A_U the area of
    the union of the n parts, A_I the area of their intersection (pixels inside all n parts;
    for n = 2 the overlap; for n = 1 there is nothing to overlap and A_I = 0) and A_O the area
    of the union outside the object box. Areas count the pixels of the saliency grid (a pixel
    belongs to a box when its centre lies inside it).

    Returns:
        A float; -inf when A_U - A_I - A_O <= 0 or the union's mean saliency is 0.
    """
    parts, object_box = _check_boxes(parts, "parts"), _check_box(object_box)
    saliency = _check_saliency(saliency).double()
    if len(parts) == 0:
        raise ValueError("part_score needs at least one part; got parts of shape (0, 4)")
    height, width = saliency.shape
    masks = box_masks(parts.to(saliency.device), height, width)  # (n, H, W)
    inside = box_masks(object_box[None].to(saliency.device), height, width)[0]  # (H, W)
    union = masks.any(dim=0)
    inter = masks.all(dim=0) if len(parts) > 1 else torch.zeros_like(union)
    a_union = union.sum().double()
    spread = a_union - inter.sum() - (union & ~inside).sum()
    return _delta_part(spread, saliency[union].sum(), a_union).item()


def pair_scores(
    candidates: torch.Tensor, object_box: torch.Tensor, saliency: torch.Tensor
) -> torch.Tensor:
    """Δ_part of every pair of candidates at once, from matrix products of their masks.

    With M the (C, H*W) flattened masks, o the object's mask and s the saliency: A_I = M M^T,
    A_U = a_i + a_j - A_I with a = diag(A_I), |union ∩ object| from (M * o) M^T likewise,
    A_O = A_U - |union ∩ object| and the union's saliency sum from (M * s) M^T. The products
    run over bands of image rows of about 2**21 / C pixels, so the working memory is one
    (3C, band) float32 buffer of 24 MiB whatever C and the image size (a whole 448 x 448 image
    would take 3 x 200 x 448**2 x 4 bytes = 482 MiB for C = 200), plus three (C, C) float64
    sums. Runs on the saliency's device; about 1 s for C = 200 at 448 x 448 on one CPU core,
    0.1 s at 112 x 112.

    Args:
        candidates: (C, 4) boxes.
        object_box: (4,).
        saliency: (H, W) in [0, 1].

    Returns:
        float64 (C, C), symmetric, score[i, j] = part_score(candidates[[i, j]], ...); -inf on
        the diagonal and where a pair is invalid.
    """
    candidates, object_box = _check_boxes(candidates, "candidates"), _check_box(object_box)
    saliency = _check_saliency(saliency)
    height, width = saliency.shape
    device, num = saliency.device, len(candidates)
    rows, cols = _rows_cols(candidates.to(device), height, width)  # (C, H), (C, W)
    inside = box_masks(object_box[None].to(device), height, width)[0].float()  # (H, W)
    saliency = saliency.float()
    # One matmul per band of image rows: [M; M * inside; M * saliency] @ M^T, summed over the
    # bands. Counts stay exact in float32 (a band holds far fewer than 2**24 pixels).
    products = torch.zeros(3 * num, num, dtype=torch.float64, device=device)
    band = max(1, _BAND_ELEMENTS // max(1, num * width))
    for y0 in range(0, height, band):
        in_band = rows[:, y0 : y0 + band, None] & cols[:, None, :]  # (C, b, W)
        stacked = torch.empty(3 * num, in_band[0].numel(), device=device)  # (3C, b*W)
        masks, in_object, in_saliency = stacked.split(num)
        masks.copy_(in_band.flatten(1))
        torch.mul(masks, inside[y0 : y0 + band].flatten(), out=in_object)
        torch.mul(masks, saliency[y0 : y0 + band].flatten(), out=in_saliency)
        products += (stacked @ masks.T).double()
    inter, inter_in, inter_sal = products.split(num)  # (C, C) each
    inter_sal = (inter_sal + inter_sal.T) / 2  # symmetric to the bit, whatever the BLAS
    area, area_in, sal = inter.diagonal(), inter_in.diagonal(), inter_sal.diagonal()  # (C,)
    a_union = area[:, None] + area[None, :] - inter  # A_U
    in_union = area_in[:, None] + area_in[None, :] - inter_in  # |union ∩ object|
    spread = a_union - inter - (a_union - in_union)  # A_U - A_I - A_O
    sal_union = sal[:, None] + sal[None, :] - inter_sal
    scores = _delta_part(spread, sal_union, a_union)
    return scores.fill_diagonal_(-math.inf)


class _Grid(NamedTuple):
    """Candidates as cell ranges on the saliency grid, for scoring sets of any size."""

    spans: torch.Tensor  # (C, 4) int64 c0, r0, c1, r1: the cells c0 <= x < c1, r0 <= y < r1
    object_span: torch.Tensor  # (4,) the object's cells
    table: torch.Tensor  # (H + 1, W + 1) int64 summed-area table of the saliency, in _UNITs


def _spans(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The cells each box covers (pixel-centre rule) as ranges c0, r0, c1, r1: (K, 4) int64."""
    rows, cols = _rows_cols(boxes, height, width)

    def first_last(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = masks.int().argmax(dim=1)  # a box's cells along an axis are contiguous
        return first, first + masks.sum(dim=1)

    (c0, c1), (r0, r1) = first_last(cols), first_last(rows)
    return torch.stack([c0, r0, c1, r1], dim=1)


def _grid(candidates: torch.Tensor, object_box: torch.Tensor, saliency: torch.Tensor) -> _Grid:
    height, width = saliency.shape
    device = saliency.device
    table = torch.zeros(height + 1, width + 1, dtype=torch.int64, device=device)
    table[1:, 1:] = (saliency.double() / _UNIT).round().long().cumsum(dim=0).cumsum(dim=1)
    spans = _spans(candidates.to(device), height, width)
    return _Grid(spans, _spans(object_box[None].to(device), height, width)[0], table)


def _rect_sums(spans: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Saliency sums (...) of cell ranges (..., 4) from the summed-area table, in _UNITs."""
    c0, r0, c1, r1 = spans.unbind(dim=-1)
    c1, r1 = torch.maximum(c1, c0), torch.maximum(r1, r0)  # an empty range sums to 0
    return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]


def _set_terms(grid: _Grid, sets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Δ_part (S,) and union saliency sums (S,) of sets (S, n) of candidate rows.

    The union by inclusion-exclusion over the 2**n - 1 non-empty subsets of each set: every
    subset's intersection is again a range of cells, whose area, area inside the object and
    saliency sum are exact: the summed-area table holds the saliency in whole multiples of
    _UNIT = 2**-32 (integers, so a union on zero saliency sums to exactly 0). Equal to
    `part_score` on the masks up to that rounding.
    """
    n = sets.shape[1]
    subsets = torch.tensor(list(itertools.product([False, True], repeat=n))[1:], device=sets.device)
    sign = 1 - 2 * (subsets.sum(dim=1) % 2 == 0).long()  # (T,) +1 for odd subsets, -1 even
    member = subsets[None, :, :, None]  # (1, T, n, 1)
    big = torch.iinfo(torch.int64).max
    scores, sal_sums = [], []
    for chunk in sets.split(max(1, _SET_ELEMENTS // (len(subsets) * n))):
        spans = grid.spans[chunk][:, None]  # (S, 1, n, 4)
        lo = torch.where(member, spans[..., :2], -big).amax(dim=2)  # (S, T, 2)
        hi = torch.where(member, spans[..., 2:], big).amin(dim=2)
        inter = torch.cat([lo, hi], dim=-1)  # (S, T, 4) each subset's common cells
        inside = torch.cat(
            [torch.maximum(lo, grid.object_span[:2]), torch.minimum(hi, grid.object_span[2:])], -1
        )
        area = (hi - lo).clamp(min=0).prod(dim=-1)  # (S, T) int64, like everything here
        area_in = (inside[..., 2:] - inside[..., :2]).clamp(min=0).prod(dim=-1)
        a_union, in_union = (area * sign).sum(dim=1), (area_in * sign).sum(dim=1)  # (S,)
        sal_union = (_rect_sums(inter, grid.table) * sign).sum(dim=1).double() * _UNIT
        a_inter = area[:, -1] if n > 1 else torch.zeros_like(a_union)  # all n parts
        spread = (a_union - a_inter - (a_union - in_union)).double()  # A_U - A_I - A_O
        scores.append(_delta_part(spread, sal_union, a_union.double()))
        sal_sums.append(sal_union)
    return torch.cat(scores), torch.cat(sal_sums)


def _best(scores: torch.Tensor, sal_union: torch.Tensor) -> int:
    """Index of the highest score; ties (all -inf included) go to the larger union saliency,
    then to the first."""
    top = scores == scores.max()
    return int(torch.where(top, sal_union, torch.full_like(sal_union, -math.inf)).argmax())


def select_parts(
    candidates: torch.Tensor,
    object_box: torch.Tensor,
    saliency: torch.Tensor,
    n: int = 2,
    *,
    exhaustive_limit: int = 100_000,
) -> PartChoice:
    """The n candidates with the highest part spatial constraint Δ_part.

    n = 1: the best single part (A_I = 0). n = 2: the best of all pairs. n > 2: exhaustive
    over all C-choose-n sets when there are at most `exhaustive_limit` of them, otherwise
    greedy: the best pair, then repeatedly the candidate whose addition gives the best score.

    Sets are scored all at once on the boxes' cell ranges: the union by inclusion-exclusion
    over the 2**n - 1 intersections of each set (rectangles again) and the saliency from a
    summed-area table, the same numbers as `part_score` (up to a saliency rounding of 2**-32)
    in O(2**n) per set whatever the image size: all 19,900 pairs of 200 candidates take some
    40 ms on one CPU core at 448 x 448, where `pair_scores`' mask products take about 1 s.

    Ties, and the case where no set is valid (every score -inf, e.g. every candidate pair
    lies outside the object box or on zero saliency), go to the set whose union holds the most
    saliency (sum, not mean, so the larger of equally salient sets), then to the first in
    order; the returned score is then -inf.

    Args:
        candidates: (C, 4) boxes, typically `patches[object_constraint(patches, ...)]`.
        object_box: (4,) the object region.
        saliency: (H, W) in [0, 1] at the image's size.
        n: how many parts to select.
        exhaustive_limit: the largest number of sets searched exhaustively for n > 2 (100,000
            sets: C = 85 for n = 3).

    Returns:
        PartChoice(indices (n,) ascending, boxes (n, 4), score).

    Raises:
        ValueError: n < 1, or fewer than n candidates.
    """
    candidates, object_box = _check_boxes(candidates, "candidates"), _check_box(object_box)
    saliency = _check_saliency(saliency)
    if n < 1:
        raise ValueError(f"select_parts needs n >= 1 parts, got n={n}")
    if len(candidates) < n:
        raise ValueError(
            f"select_parts needs at least n={n} candidates, got {len(candidates)}; lower min_iou "
            "or min_inside in object_constraint, or pass more proposals"
        )
    grid = _grid(candidates, object_box, saliency)
    every = torch.arange(len(candidates), device=saliency.device)
    if n <= 2 or math.comb(len(candidates), n) <= exhaustive_limit:
        sets = every[:, None] if n == 1 else torch.combinations(every, 2 if n == 2 else n)
        scores, sal_union = _set_terms(grid, sets)  # (S,) each
        best = _best(scores, sal_union)
        chosen, score = sets[best], scores[best].item()
    else:
        chosen = select_parts(candidates, object_box, saliency, 2).indices.to(every.device)
        while len(chosen) < n:
            rest = every[~torch.isin(every, chosen)]
            sets = torch.cat([chosen.expand(len(rest), -1), rest[:, None]], dim=1)
            scores, sal_union = _set_terms(grid, sets)
            best = _best(scores, sal_union)
            chosen, score = sets[best], scores[best].item()
    indices = chosen.sort().values.to(candidates.device)
    return PartChoice(indices, candidates[indices], score)
