"""OPAM's score fusion: the weight grid, and cross-validated weights against a loop over KFold."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from labkit.attention.fusion import (
    AUTHORS_WEIGHTS,
    accuracy,
    choose_fusion_weights,
    fuse_scores,
    weight_grid,
)


def _three_networks(seed: int, num: int = 120, classes: int = 6):
    """Logits of three networks: network 1 right on every image, 0 and 2 right about half the
    time and confidently wrong otherwise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (num,), generator=generator)
    onehot = torch.nn.functional.one_hot(labels, classes).float()
    wrong = torch.nn.functional.one_hot((labels + 1) % classes, classes).float()
    noisy = [torch.rand(num, 1, generator=generator) < 0.5 for _ in range(2)]
    scores = [
        torch.where(noisy[0], 4 * wrong, 3 * onehot)
        + torch.randn(num, classes, generator=generator),
        2 * onehot + torch.randn(num, classes, generator=generator) * 0.3,
        torch.where(noisy[1], 4 * wrong, 3 * onehot)
        + torch.randn(num, classes, generator=generator),
    ]
    return scores, labels


def test_weight_grid_sums_to_one_with_the_right_count():
    grid = weight_grid(3, 0.1)
    assert grid.shape == (66, 3)
    assert torch.allclose(grid.sum(dim=1), torch.ones(66, dtype=grid.dtype))
    assert (grid >= 0).all() and len({tuple(row) for row in grid.tolist()}) == 66
    assert grid[0].tolist() == [0.4, 0.3, 0.3]  # the most even row first
    assert weight_grid(4, 0.25).shape == (35, 4)  # 7 choose 3
    assert weight_grid(1, 0.5).tolist() == [[1.0]]
    with pytest.raises(ValueError, match="step must divide 1"):
        weight_grid(3, 0.3)
    with pytest.raises(ValueError, match="num_scores >= 1"):
        weight_grid(0)


def test_fuse_scores_is_the_weighted_sum_of_softmax_scores():
    scores, labels = _three_networks(0)
    fused = fuse_scores(scores, AUTHORS_WEIGHTS)
    expected = sum(w * s.softmax(dim=1) for w, s in zip(AUTHORS_WEIGHTS, scores, strict=True))
    assert torch.allclose(fused, expected, atol=1e-6)
    assert torch.allclose(fused.sum(dim=1), torch.ones(len(labels)), atol=1e-5)
    probabilities = [s.softmax(dim=1) for s in scores]
    assert torch.allclose(fuse_scores(probabilities, AUTHORS_WEIGHTS, softmax=False), fused)
    assert accuracy(fuse_scores(scores, (0, 1, 0)), labels) == 1.0


def test_fuse_scores_errors_name_the_problem():
    scores, _ = _three_networks(0)
    with pytest.raises(ValueError, match="3 networks, \\(2,\\) weights"):
        fuse_scores(scores, (0.5, 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        fuse_scores(scores, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        fuse_scores(scores, (1.5, -0.5, 0.0))
    with pytest.raises(ValueError, match="one shape"):
        fuse_scores([scores[0], scores[1][:5], scores[2]], AUTHORS_WEIGHTS)
    with pytest.raises(ValueError, match="at least one network"):
        fuse_scores([], ())


def test_choose_fusion_weights_picks_the_planted_best_network():
    scores, labels = _three_networks(1)
    choice = choose_fusion_weights(scores, labels)
    assert choice.weights.argmax() == 1 and choice.accuracy == 1.0 and choice.cv_accuracy == 1.0
    assert accuracy(fuse_scores(scores, choice.weights.tolist()), labels) == 1.0
    assert list(choice.folds.columns) == [
        "fold",
        "n_held_out",
        "weight_0",
        "weight_1",
        "weight_2",
        "train_accuracy",
        "held_out_accuracy",
    ]
    assert choice.folds.shape == (5, 7) and choice.folds["n_held_out"].sum() == len(labels)
    assert (choice.folds["weight_1"] > choice.folds[["weight_0", "weight_2"]].max(axis=1)).all()


def test_choose_fusion_weights_matches_a_loop_over_kfold_and_the_grid():
    scores, labels = _three_networks(2, num=90)
    scores[1] = scores[1] + torch.randn(90, 6, generator=torch.Generator().manual_seed(9)) * 1.5
    choice = choose_fusion_weights(scores, labels, n_splits=4, seed=3)
    grid = weight_grid(3, 0.1).tolist()

    def acc(weights, rows):
        return accuracy(fuse_scores([s[rows] for s in scores], weights), labels[rows])

    held_out_accuracies = []
    for fold, (train, held_out) in enumerate(
        KFold(4, shuffle=True, random_state=3).split(np.arange(90))
    ):
        best = max(grid, key=lambda w, train=train: acc(w, train))  # max keeps the first of ties
        row = choice.folds.iloc[fold]
        assert [row["weight_0"], row["weight_1"], row["weight_2"]] == pytest.approx(best)
        assert row["n_held_out"] == len(held_out)
        assert row["held_out_accuracy"] == pytest.approx(acc(best, held_out))
        held_out_accuracies.append(acc(best, held_out))
    assert choice.cv_accuracy == pytest.approx(np.mean(held_out_accuracies))
    everything = np.arange(90)
    assert choice.weights.tolist() == pytest.approx(max(grid, key=lambda w: acc(w, everything)))
    assert 0 < choice.cv_accuracy < 1


def test_choose_fusion_weights_folds_are_reproducible():
    scores, labels = _three_networks(3)
    scores[1] = scores[1] + torch.randn(120, 6, generator=torch.Generator().manual_seed(5)) * 2
    first = choose_fusion_weights(scores, labels, seed=4)
    again = choose_fusion_weights(scores, labels, seed=4)
    assert first.folds.equals(again.folds) and torch.equal(first.weights, again.weights)
    other = choose_fusion_weights(scores, labels, seed=5)
    assert not first.folds["held_out_accuracy"].equals(other.folds["held_out_accuracy"])


def test_choose_fusion_weights_errors_name_the_problem():
    scores, labels = _three_networks(0, num=6)
    with pytest.raises(ValueError, match=r"labels must be \(6,\)"):
        choose_fusion_weights(scores, labels[:5])
    with pytest.raises(ValueError, match=r"n_splits must be in 2 \.\. 6"):
        choose_fusion_weights(scores, labels, n_splits=7)
    with pytest.raises(ValueError, match="step must divide 1"):
        choose_fusion_weights(scores, labels, n_splits=2, step=0.4)


def test_ties_go_to_the_most_even_weights():
    labels = torch.arange(4)
    same = torch.eye(4) * 5  # three identical perfect networks: every grid point ties
    choice = choose_fusion_weights([same, same, same], labels, n_splits=2)
    assert choice.weights.tolist() == [0.4, 0.3, 0.3]
    assert (
        choice.folds[["weight_0", "weight_1", "weight_2"]].values.tolist() == [[0.4, 0.3, 0.3]] * 2
    )


def test_log_loss_criterion_prefers_the_better_calibrated_mix_that_accuracy_ties() -> None:
    # two networks right on the same images; the second more confident where the first errs
    labels = torch.tensor([0, 1, 0, 1])
    first = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    second = torch.tensor([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    by_accuracy = choose_fusion_weights([first, second], labels, n_splits=2, step=0.5,
                                        softmax=False)  # fmt: skip
    by_loss = choose_fusion_weights([first, second], labels, n_splits=2, step=0.5,
                                    softmax=False, criterion="log_loss")  # fmt: skip
    assert by_accuracy.accuracy == by_loss.accuracy == 1.0
    grid = weight_grid(2, 0.5)
    losses = [-torch.log(w[0] * first[range(4), labels] + w[1] * second[range(4), labels]).mean()
              for w in grid]  # fmt: skip
    assert by_loss.weights.tolist() == grid[int(torch.stack(losses).argmin())].tolist()
    with pytest.raises(ValueError, match="criterion must be"):
        choose_fusion_weights([first, second], labels, n_splits=2, criterion="f1")
