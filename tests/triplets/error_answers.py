"""Question 5's answer for test data: the nearest training row of a given class, per query.

`labkit.triplets.embeddings.error_table` takes these rows (in lab 03 the student computes
them), so the tests of the table, the gallery and the error browser make them here, by masked
distances.
"""

from __future__ import annotations

import torch


def nearest_rows(
    queries: torch.Tensor, classes: torch.Tensor, train: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """(Q,) int64: per query (Q, D), the row of `train` (N, D) of class `classes[q]` nearest it."""
    distance = torch.cdist(queries, train).masked_fill(labels[None] != classes[:, None], 1e9)
    return distance.argmin(dim=1)


def error_answers(
    test: torch.Tensor,
    test_labels: torch.Tensor,
    preds: torch.Tensor,
    train: torch.Tensor,
    train_labels: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest true-class rows, nearest predicted-class rows), one per misclassified test row."""
    wrong = preds != test_labels
    return (
        nearest_rows(test[wrong], test_labels[wrong], train, train_labels),
        nearest_rows(test[wrong], preds[wrong], train, train_labels),
    )


def answered_error_table(
    test: torch.Tensor,
    test_labels: torch.Tensor,
    preds: torch.Tensor,
    train: torch.Tensor,
    train_labels: torch.Tensor,
    neighbors: int = 3,
):
    """`error_table` given Question 5's right answer, with `neighbors` voters per error."""
    from labkit.triplets.embeddings import error_table

    nearest_true, nearest_pred = error_answers(test, test_labels, preds, train, train_labels)
    return error_table(
        test_labels, preds, test, train, train_labels,
        nearest_true=nearest_true, nearest_pred=nearest_pred, neighbors=neighbors,
    )  # fmt: skip
