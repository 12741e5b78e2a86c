"""OPAM's part alignment against loops and brute-force searches, and PartNet's slot order."""

from __future__ import annotations

import itertools

import pytest
import torch

from labkit.attention.part_alignment import (
    PartNet,
    aligned_order,
    assign_parts,
    cluster_filters,
    part_responses,
)
from labkit.models.backbones import small_vgg_backbone


def test_cluster_filters_recover_two_planted_groups():
    generator = torch.Generator().manual_seed(0)
    directions = torch.randn(2, 8 * 3 * 3, generator=generator)
    planted = torch.randperm(40, generator=generator) % 2  # (40,) the group of each filter
    weight = directions[planted] * (1 + torch.rand(40, 1, generator=generator))
    weight = (weight + 0.4 * torch.randn(40, 72, generator=generator)).reshape(40, 8, 3, 3)
    groups = cluster_filters(weight, 2)
    canonical = planted if planted[0] == 0 else 1 - planted  # filter 0 is in group 0
    assert groups.dtype == torch.long and torch.equal(groups, canonical)
    assert torch.equal(cluster_filters(weight.flatten(1), 2), groups)  # (C_out, D) alike


def test_cluster_filters_leave_no_group_empty():
    weight = torch.randn(48, 16, generator=torch.Generator().manual_seed(1))
    for n_groups in (1, 3, 5):
        groups = cluster_filters(weight, n_groups, seed=2)
        assert torch.equal(groups.unique(), torch.arange(n_groups))
        assert groups[0] == 0
    with pytest.raises(ValueError, match=r"n_groups must be in 1 \.\. 48"):
        cluster_filters(weight, 49)
    with pytest.raises(ValueError, match="weight must be"):
        cluster_filters(torch.zeros(5), 2)


def test_part_responses_match_a_loop_over_cells():
    generator = torch.Generator().manual_seed(3)
    feature_map = torch.rand(6, 7, 9, generator=generator)  # (C, h, w) for a 56 x 72 image
    parts = torch.tensor([[8.0, 8.0, 40.0, 32.0], [60.0, 50.0, 61.0, 51.0], [0.0, 0.0, 72.0, 56.0]])
    groups = torch.tensor([0, 2, 1, 0, 2, 2])
    responses = part_responses(feature_map, parts, groups, 3, (56, 72))
    expected = torch.zeros(3, 3)
    for p, (x1, y1, x2, y2) in enumerate((parts / 8).tolist()):  # the feature grid's stride
        cells = [
            (y, x) for y in range(7) for x in range(9) if x1 <= x + 0.5 < x2 and y1 <= y + 0.5 < y2
        ]
        cells = cells or [(int((y1 + y2) / 2), int((x1 + x2) / 2))]  # a tiny box: its centre
        for c in range(6):
            expected[p, groups[c]] += sum(feature_map[c, y, x] for y, x in cells) / len(cells)
    assert torch.allclose(responses, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"groups must be \(6,\)"):
        part_responses(feature_map, parts, groups[:5], 3, (56, 72))
    with pytest.raises(ValueError, match=r"groups must lie in 0 \.\. 1"):
        part_responses(feature_map, parts, groups, 2, (56, 72))


def test_assign_parts_is_the_permutation_of_largest_total():
    generator = torch.Generator().manual_seed(4)
    for _ in range(5):
        responses = torch.rand(4, 4, generator=generator)
        assignment = assign_parts(responses)
        best = max(
            itertools.permutations(range(4)),
            key=lambda p: sum(responses[i, p[i]] for i in range(4)),
        )
        assert assignment.tolist() == list(best)
        order = aligned_order(assignment)
        assert assignment[order].tolist() == [0, 1, 2, 3]  # slot k holds group k's part
    rectangular = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.3, 0.1]])
    assert assign_parts(rectangular).tolist() == [0, 0]  # not one-to-one: argmax
    with pytest.raises(ValueError, match="permutation"):
        aligned_order(torch.tensor([0, 0]))


def test_partnet_concatenates_the_slots_pooled_features_in_order() -> None:
    torch.manual_seed(0)
    backbone = small_vgg_backbone((4, 8))
    net = PartNet(backbone, 8, num_parts=2, num_classes=3).eval()
    crops = torch.randn(4, 2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = net(crops)
        pooled = [backbone(crops[:, k])[-1].mean(dim=(2, 3)) for k in range(2)]
        want = net.fc(torch.cat(pooled, dim=1))
        swapped = net(crops.flip(1))
    assert logits.shape == (4, 3)
    torch.testing.assert_close(logits, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(logits, swapped)  # the slot order matters
    with pytest.raises(ValueError, match=r"\(N, 2, 3, s, s\)"):
        net(crops[:, :1])
    with pytest.raises(ValueError, match="at least one part"):
        PartNet(backbone, 8, num_parts=0, num_classes=3)
