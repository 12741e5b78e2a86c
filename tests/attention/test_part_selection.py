"""OPAM's part selection against loops, numpy and brute-force searches."""

import itertools
import math

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from labkit.attention.part_selection import (
    box_masks,
    object_constraint,
    pair_scores,
    part_score,
    select_parts,
)

H, W = 24, 32
OBJECT = torch.tensor([4.3, 3.0, 27.6, 20.5])


def _boxes(num: int, generator: torch.Generator, height: int = H, width: int = W) -> torch.Tensor:
    size = torch.tensor([width, height], dtype=torch.float32)
    corner = torch.rand(num, 2, generator=generator) * size * 0.8 - 1.5  # a few start outside
    extent = torch.rand(num, 2, generator=generator) * size * 0.5 + 0.4
    return torch.cat([corner, corner + extent], dim=1)


def _numpy_pair_score(a, b, box, saliency) -> float:
    """Δ_part of two boxes, recomputed in numpy float64 from the pixel-centre rule."""
    ys, xs = np.mgrid[: saliency.shape[0], : saliency.shape[1]] + 0.5

    def mask(x1, y1, x2, y2):
        return (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)

    ma, mb, mo = mask(*a), mask(*b), mask(*box)
    union = ma | mb
    spread = union.sum() - (ma & mb).sum() - (union & ~mo).sum()
    total = saliency[union].sum()
    if spread <= 0 or total <= 0:
        return -math.inf
    return math.log(spread) + math.log(total / union.sum())


def test_box_masks_take_the_pixels_whose_centres_lie_inside():
    boxes = torch.tensor(
        [[0.0, 0.0, 3.0, 2.0], [1.4, 0.6, 3.5, 2.5], [-2.0, 3.0, 2.0, 9.0], [2.0, 2.0, 2.4, 2.4]]
    )
    masks = box_masks(boxes, 5, 6)
    expected = torch.zeros(4, 5, 6, dtype=torch.bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        for y, x in itertools.product(range(5), range(6)):
            expected[k, y, x] = x1 <= x + 0.5 < x2 and y1 <= y + 0.5 < y2
    assert torch.equal(masks, expected)
    assert masks[0].sum() == 6  # integer corners: columns 0..2, rows 0..1, x2/y2 exclusive
    assert not masks[3].any()  # no pixel centre inside
    with pytest.raises(ValueError, match=r"boxes \(K, 4\).*\(3,\)"):
        box_masks(torch.zeros(3), 5, 6)


def test_object_constraint_matches_a_loop_over_box_iou():
    generator = torch.Generator().manual_seed(0)
    patches = torch.cat([_boxes(300, generator), OBJECT + torch.randn(40, 4, generator=generator)])
    kept = object_constraint(patches, OBJECT, min_iou=0.3, min_inside=0.6, max_parts=25)
    expected = []
    for i, patch in enumerate(patches):
        iou = box_iou(patch[None], OBJECT[None]).item()
        x1, y1 = max(patch[0], OBJECT[0]), max(patch[1], OBJECT[1])
        x2, y2 = min(patch[2], OBJECT[2]), min(patch[3], OBJECT[3])
        inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
        area = float((patch[2] - patch[0]) * (patch[3] - patch[1]))
        if iou > 0.3 and inter / area > 0.6:
            expected.append((-iou, i))
    assert len(expected) > 25  # the cap bites
    assert kept.tolist() == [i for _, i in sorted(expected)][:25]
    assert kept.dtype == torch.long
    none = object_constraint(patches, OBJECT, min_iou=0.99, min_inside=0.0, max_parts=10)
    assert none.shape == (0,)


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_scores_equal_part_score_and_numpy_on_every_pair(seed):
    generator = torch.Generator().manual_seed(seed)
    candidates = _boxes(14, generator)
    candidates[0] = torch.tensor([28.0, 21.0, 31.0, 23.0])  # both outside the object: A_U = A_O
    candidates[1] = torch.tensor([28.0, 0.0, 32.0, 2.0])
    saliency = torch.rand(H, W, generator=generator)
    saliency[:, 28:] = 0.0
    scores = pair_scores(candidates, OBJECT, saliency)
    assert scores.shape == (14, 14) and torch.equal(scores, scores.T)
    assert torch.isinf(scores.diagonal()).all()
    boxes, object_box, sal = candidates.tolist(), OBJECT.tolist(), saliency.double().numpy()
    for i, j in itertools.permutations(range(14), 2):
        plain = part_score(candidates[[i, j]], OBJECT, saliency)
        numpy = _numpy_pair_score(boxes[i], boxes[j], object_box, sal)
        assert scores[i, j].item() == pytest.approx(plain, rel=1e-6, abs=1e-6)
        assert plain == pytest.approx(numpy, rel=1e-12, abs=1e-12)
    assert scores[0, 1] == -math.inf and torch.isfinite(scores).sum() > 100


def test_part_score_is_minus_infinity_without_spread_or_saliency():
    saliency = torch.rand(H, W)
    part = torch.tensor([[6.0, 5.0, 12.0, 10.0]])
    assert part_score(part.repeat(2, 1), OBJECT, saliency) == -math.inf  # A_U = A_I
    assert part_score(part, OBJECT, torch.zeros(H, W)) == -math.inf
    assert math.isfinite(part_score(part, OBJECT, saliency))  # one part: A_I = 0
    with pytest.raises(ValueError, match="at least one part"):
        part_score(torch.zeros(0, 4), OBJECT, saliency)


@pytest.mark.parametrize(("seed", "n"), [(0, 1), (1, 2), (2, 2), (3, 3), (4, 3), (5, 4)])
def test_select_parts_equals_exhaustive_search_by_loops(seed, n):
    generator = torch.Generator().manual_seed(seed)
    candidates = _boxes(9, generator)
    saliency = torch.rand(H, W, generator=generator)
    choice = select_parts(candidates, OBJECT, saliency, n)
    best = max(
        itertools.combinations(range(9), n),
        key=lambda s: part_score(candidates[list(s)], OBJECT, saliency),
    )
    assert choice.indices.tolist() == list(best)
    assert torch.equal(choice.boxes, candidates[list(best)])
    assert choice.score == pytest.approx(part_score(candidates[list(best)], OBJECT, saliency))


def test_select_parts_past_the_limit_is_greedy():
    generator = torch.Generator().manual_seed(7)
    candidates = _boxes(10, generator)
    saliency = torch.rand(H, W, generator=generator)

    def score(s):
        return part_score(candidates[list(s)], OBJECT, saliency)

    chosen = list(max(itertools.combinations(range(10), 2), key=score))
    while len(chosen) < 4:
        chosen.append(
            max((k for k in range(10) if k not in chosen), key=lambda k: score([*chosen, k]))
        )
    choice = select_parts(candidates, OBJECT, saliency, 4, exhaustive_limit=100)  # 210 sets
    assert choice.indices.tolist() == sorted(chosen)
    assert choice.score == pytest.approx(score(chosen))
    exhaustive = select_parts(candidates, OBJECT, saliency, 4, exhaustive_limit=210)
    assert exhaustive.score >= choice.score


def test_select_parts_without_a_valid_pair_falls_back_to_the_most_salient_union():
    candidates = torch.tensor(
        [[0.0, 0.0, 3.0, 3.0], [0.0, 20.0, 4.0, 24.0], [28.0, 0.0, 32.0, 5.0], [1.0, 1.0, 3.0, 3.0]]
    )  # all outside the object: A_U - A_I - A_O <= 0 for every pair
    saliency = torch.zeros(H, W)
    saliency[20:, :4] = 1.0
    saliency[:5, 28:] = 0.5
    assert torch.isinf(pair_scores(candidates, OBJECT, saliency)).all()
    choice = select_parts(candidates, OBJECT, saliency, 2)
    assert choice.indices.tolist() == [1, 2] and choice.score == -math.inf
    inside = torch.tensor([[5.0, 4.0, 9.0, 9.0], [8.0, 6.0, 14.0, 12.0], [15.0, 5.0, 20.0, 9.0]])
    for n in (1, 2, 3):  # zero saliency: every set invalid, every union sum 0, the first set
        choice = select_parts(inside, OBJECT, torch.zeros(H, W), n)
        assert choice.indices.tolist() == list(range(n)) and choice.score == -math.inf


def test_select_parts_errors_name_the_counts_and_the_remedy():
    saliency = torch.rand(H, W)
    with pytest.raises(ValueError, match=r"at least n=3 candidates, got 2; lower min_iou"):
        select_parts(torch.tensor([[0.0, 0, 5, 5], [2, 2, 9, 9]]), OBJECT, saliency, 3)
    with pytest.raises(ValueError, match="got 0"):
        select_parts(torch.zeros(0, 4), OBJECT, saliency)
    with pytest.raises(ValueError, match="n >= 1"):
        select_parts(torch.zeros(3, 4), OBJECT, saliency, 0)
    with pytest.raises(ValueError, match=r"object_box must be one box \(4,\)"):
        select_parts(torch.zeros(3, 4), torch.zeros(1, 4), saliency)
    with pytest.raises(ValueError, match=r"saliency must be a map \(H, W\)"):
        pair_scores(torch.zeros(3, 4), OBJECT, saliency[None])
