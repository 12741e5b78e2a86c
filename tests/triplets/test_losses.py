"""Triplet losses against nn.TripletMarginLoss; loss_fn / metric_fn factories; bad input."""

import pytest
import torch
from torch import nn

from labkit.triplets import (
    batch_hard,
    batch_semi_hard,
    margin_violations,
    mined_triplet_loss,
    stacked_triplet_loss,
    triplet_accuracy,
    triplet_loss,
)


def _embeddings(n: int = 12, dim: int = 4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=g), torch.arange(n) % 3


def test_triplet_loss_matches_torch_module_value_and_gradient():
    x, _ = _embeddings()
    a, p, n = torch.tensor([0, 1, 2, 5]), torch.tensor([3, 4, 8, 11]), torch.tensor([1, 2, 0, 6])
    mine = x.clone().requires_grad_()
    ref = x.clone().requires_grad_()
    loss = triplet_loss(mine, (a, p, n), margin=1.5)
    expected = nn.TripletMarginLoss(margin=1.5)(ref[a], ref[p], ref[n])
    loss.backward()
    expected.backward()
    assert torch.allclose(loss, expected)
    assert torch.allclose(mine.grad, ref.grad)


def test_no_triplet_gives_a_zero_loss_that_backpropagates():
    x, _ = _embeddings()
    x.requires_grad_()
    empty = torch.zeros(0, dtype=torch.long)
    loss = triplet_loss(x, (empty, empty, empty), margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert (x.grad == 0).all()


def test_stacked_loss_is_the_loss_of_the_three_rows():
    x, labels = _embeddings(12)
    outputs = x.view(4, 3, 4)  # (B, 3, D)
    expected = nn.TripletMarginLoss(margin=2.0)(outputs[:, 0], outputs[:, 1], outputs[:, 2])
    assert torch.allclose(stacked_triplet_loss(2.0)(outputs, labels.view(4, 3)), expected)
    with pytest.raises(ValueError, match=r"expected stacked triplet embeddings \(B, 3, D\)"):
        stacked_triplet_loss(2.0)(x, labels)


@pytest.mark.parametrize(
    ("name", "miner"),
    [("batch_hard", batch_hard), ("semi_hard", lambda x, y: batch_semi_hard(x, y, 2.0))],
)
def test_mined_loss_mines_then_averages(name, miner):
    x, labels = _embeddings()
    expected = triplet_loss(x, miner(x, labels), margin=2.0)
    assert torch.allclose(mined_triplet_loss(name, margin=2.0)(x, labels), expected)
    assert torch.allclose(mined_triplet_loss(miner, margin=2.0)(x, labels), expected)
    stacked = x[:12].view(4, 3, -1)  # fixed triplets (validation) are scored as they are
    assert torch.allclose(
        mined_triplet_loss(name, margin=2.0)(stacked, labels[:12].view(4, 3)),
        stacked_triplet_loss(2.0)(stacked, labels[:12].view(4, 3)),
    )


def test_triplet_accuracy():
    # 1-D stacked triplets: gaps d_an - d_ap of 2, 0.5 and -1
    outputs = torch.tensor([[[0.0], [1.0], [3.0]], [[0.0], [1.0], [1.5]], [[0.0], [2.0], [1.0]]])
    assert triplet_accuracy(outputs, torch.zeros(3, 3)) == pytest.approx(2 / 3)
    assert triplet_accuracy(outputs, torch.zeros(3, 3), margin=1.0) == pytest.approx(1 / 3)
    # (N, D) with labels: anchors whose every positive is closer than every negative
    x = torch.tensor([[0.0], [0.1], [5.0], [5.1], [0.3]])  # image 4 sits among class 0
    assert triplet_accuracy(x, torch.tensor([0, 0, 1, 1, 1])) == pytest.approx(
        4 / 5
    )  # all but image 4
    assert triplet_accuracy(x, torch.zeros(5, dtype=torch.long)) == 0.0  # no negative at all


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown miner 'hardest'; choose one of \('batch_hard'"):
        mined_triplet_loss("hardest", margin=1.0)
    with pytest.raises(ValueError, match="margin must be a number >= 0, got -1"):
        mined_triplet_loss("batch_hard", margin=-1)
    with pytest.raises(ValueError, match="semi-hard mining needs margin > 0"):
        mined_triplet_loss("semi_hard", margin=0.0)
    with pytest.raises(ValueError, match="margin must be finite"):
        stacked_triplet_loss(float("inf"))


def test_margin_violations_counts_triplets_with_a_loss():
    # gaps d(a, n) - d(a, p): 4 (easy), 1.5 (inside the margin 2), -2 (hard)
    stacked = torch.tensor(
        [
            [[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]],
            [[0.0, 0.0], [1.0, 0.0], [2.5, 0.0]],
            [[0.0, 0.0], [3.0, 0.0], [1.0, 0.0]],
        ]
    )
    violating = margin_violations(2.0)
    assert violating(stacked, torch.zeros(3)) == pytest.approx(2 / 3)
    losses = torch.nn.TripletMarginLoss(margin=2.0, reduction="none")(*stacked.unbind(1))
    assert violating(stacked, torch.zeros(3)) == pytest.approx((losses > 0).float().mean().item())
    assert margin_violations(0.0)(stacked, torch.zeros(3)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="stacked triplets"):
        violating(stacked[:, 0], torch.zeros(3))
    with pytest.raises(ValueError, match="margin must be a number"):
        margin_violations(-1.0)
