"""One accuracy for predictions and for scores, in every form a student may hold them."""

import numpy as np
import pytest
import torch

from labkit.training.metrics import accuracy, top_k_error


def test_top_k_of_scores_matches_a_loop_and_caps_k():
    torch.manual_seed(0)
    logits, labels = torch.randn(50, 7), torch.randint(0, 7, (50,))
    for k in (1, 3, 5):
        ranked = [sorted(range(7), key=lambda c, row=row: -row[c].item())[:k] for row in logits]
        expected = sum(int(y) in top for y, top in zip(labels, ranked, strict=True)) / 50
        assert accuracy(logits, labels, k) == pytest.approx(expected)
    assert accuracy(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), k=5) == 1.0


def test_predictions_in_every_form_agree():
    preds, labels = [1, 2, 3, 0], [1, 2, 0, 0]
    forms = [
        (torch.tensor(preds), torch.tensor(labels)),
        (np.array(preds, dtype=np.int32), np.array(labels)),
        (preds, labels),
        (torch.tensor(preds, dtype=torch.float64), torch.tensor(labels)),
    ]
    assert {accuracy(p, y) for p, y in forms} == {0.75}


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        accuracy(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="top-5 accuracy needs scores"):
        accuracy(torch.zeros(3), torch.zeros(3), k=5)


def test_top_k_error_counts_labels_outside_the_k_best():
    scores = torch.tensor([
        [0.9, 0.05, 0.03, 0.01, 0.005, 0.005],  # label 0: first
        [0.1, 0.5, 0.2, 0.1, 0.05, 0.05],  # label 2: second
        [0.3, 0.25, 0.2, 0.1, 0.1, 0.05],  # label 5: last
        [0.05, 0.1, 0.15, 0.2, 0.25, 0.25],  # label 1: fifth of six
    ])  # fmt: skip
    labels = torch.tensor([0, 2, 5, 1])
    assert top_k_error(scores, labels) == pytest.approx(0.75)
    assert top_k_error(scores, labels, k=2) == pytest.approx(0.5)
    assert top_k_error(scores, labels, k=5) == pytest.approx(0.25)
    assert top_k_error(scores, labels, k=6) == 0.0
    assert top_k_error(scores, labels, k=10) == 0.0  # k >= num_classes: every label is in


def test_top_5_error_is_at_most_top_1_error():
    torch.manual_seed(0)
    logits, labels = torch.randn(200, 10), torch.randint(0, 10, (200,))
    top1, top5 = top_k_error(logits, labels), top_k_error(logits, labels, k=5)
    assert top5 <= top1
    assert top1 == pytest.approx(1 - accuracy(logits, labels))
    with pytest.raises(ValueError, match="empty"):
        top_k_error(torch.zeros(0, 3), torch.zeros(0))
