"""How well attention did (labkit.attention.evaluation): where the chosen parts sit on the true
part locations, the share of images a map localises, the fusion table."""

from __future__ import annotations

import pytest
import torch

from labkit.attention.evaluation import (
    fusion_table,
    group_contents,
    localised_share,
    parts_cover,
)
from labkit.attention.pipeline import Attention


def _attention(parts: torch.Tensor, true_parts: torch.Tensor) -> Attention:
    n = len(parts)
    return Attention(
        labels=torch.zeros(n, dtype=torch.long), probabilities=torch.ones(n, 1),
        predicted=torch.zeros(n, dtype=torch.long), cams=torch.zeros(n, 2, 2),
        activations=torch.zeros(n, 2, 2), maps=torch.zeros(n, 2, 2),
        object_boxes=torch.zeros(n, 4), true_boxes=torch.zeros(n, 4), true_parts=true_parts,
        proposals=[torch.zeros(0, 4)] * n, kept=[torch.zeros(0, 4)] * n, parts=parts,
    )  # fmt: skip


def test_parts_cover_and_group_contents_count_true_parts_inside_each_slot() -> None:
    parts = torch.tensor([[[0.0, 0, 10, 10], [10, 10, 20, 20]],
                          [[0.0, 0, 5, 5], [30, 30, 40, 40]]])  # fmt: skip
    true_parts = torch.tensor([[[2.0, 2, 1], [15, 15, 1], [15, 15, 0]],
                               [[2.0, 2, 1], [15, 15, 1], [35, 35, 0]]])  # fmt: skip
    attention = _attention(parts, true_parts)
    cover = parts_cover(attention)
    assert cover["parts holding a true part"].tolist() == [2, 1]
    assert cover["any part"].tolist() == [True, True]
    assert cover["every part"].tolist() == [True, False]  # the invisible one does not count
    contents = group_contents(attention, ("beak", "tail", "leg"))
    assert contents.loc["beak"].tolist() == [1.0, 0.0]
    assert contents.loc["tail"].tolist() == [0.0, 0.5]
    assert contents.loc["leg"].tolist() == [0.0, 0.0]


def test_localised_share_counts_the_boxes_with_iou_of_at_least_a_half() -> None:
    maps = torch.zeros(3, 10, 10)
    maps[0, 2:6, 3:7] = 1.0  # the box (3, 2, 7, 6): the true box
    maps[1, 0:2, 0:2] = 1.0  # far from its true box
    maps[2, 2:6, 3:7], maps[2, 2, 3] = 0.9, 0.1  # one pixel below the threshold: same box
    true_boxes = torch.tensor([[3.0, 2, 7, 6], [5, 5, 10, 10], [3, 2, 7, 6]])
    assert localised_share(maps, true_boxes, 0.5) == pytest.approx(2 / 3)
    assert localised_share(maps[:2], true_boxes[:2], 0.5) == 0.5


def test_fusion_table_compares_networks_and_both_fusions() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (60,), generator=generator)
    right = torch.nn.functional.one_hot(labels, 5).float() * 0.6 + 0.08
    noise = torch.rand(60, 5, generator=generator).softmax(dim=1)
    scores = {"ClassNet": noise, "ObjectNet": noise.flip(0), "PartNet": right}
    table, choice = fusion_table(scores, labels, scores, labels, folds=2, step=0.25)
    assert list(table.index) == ["ClassNet", "ObjectNet", "PartNet", "fusion, authors' weights",
                                 "fusion, cross-validated weights"]  # fmt: skip
    assert table.loc["PartNet", "test acc"] == 1.0
    assert table.loc["fusion, cross-validated weights", "test acc"] == 1.0
    assert table.loc["fusion, authors' weights", "weights (ClassNet, ObjectNet, PartNet)"] == (
        0.5, 0.3, 0.2,
    )  # fmt: skip
    assert len(choice.folds) == 2
    assert sum(float(w) for w in choice.weights) == pytest.approx(1.0)  # a point of the grid
