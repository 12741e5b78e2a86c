"""Tests for labkit.embeddings: each vectorised search against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit.data.tensor_dataset import TensorImageDataset, normalize
from labkit.embeddings import (
    ERROR_COLUMNS,
    centre_classify,
    centre_predict,
    class_centres,
    embed,
    error_table,
    knn_classifier,
    knn_predict,
    nearest_of_class,
    project_2d,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6), nn.BatchNorm1d(6), nn.Dropout(0.5))


def _dataset(n: int = 37, transform=None) -> TensorImageDataset:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 4
    return TensorImageDataset(images, labels, class_names=("a", "b", "c", "d"), transform=transform)


def _points(n: int, d: int = 5, num_classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.arange(n) % num_classes
    return x, y[torch.randperm(n, generator=g)]


# ---------------------------------------------------------------- embed


def test_embed_matches_manual_forward_and_restores_mode():
    model, data = _model(), _dataset(transform=lambda img: img.flip(-1))  # augmentation ignored
    model.train()
    model[2].eval()  # a submodule with its own flag, restored too
    embeddings, labels = embed(model, data, batch_size=8)
    assert model.training and not model[2].training and model[1].training
    model.eval()
    with torch.no_grad():
        expected = model(normalize(data.images))
    assert embeddings.dtype == torch.float32 and embeddings.device.type == "cpu"
    torch.testing.assert_close(embeddings, expected)
    assert torch.equal(labels, data.labels)


def test_embed_accepts_dataset_and_unshuffled_loader():
    model = _model()
    x, y = torch.randn(10, 3, 8, 8), torch.arange(10)
    plain = TensorDataset(x, y)
    from_dataset = embed(model, plain, batch_size=3, progress=True)
    from_loader = embed(model, DataLoader(plain, batch_size=4))
    for a, b in zip(from_dataset, from_loader, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.equal(from_dataset[1], y)


@pytest.mark.parametrize(
    "options", [{"batch_size": 2, "shuffle": True}, {"batch_sampler": [[1, 0], [3, 2]]}]
)
def test_embed_rejects_loader_out_of_order(options):
    plain = TensorDataset(torch.randn(4, 3, 8, 8), torch.arange(4))
    with pytest.raises(ValueError, match="shuffle=False"):
        embed(_model(), DataLoader(plain, **options))


# ---------------------------------------------------------------- classifiers


def test_knn_finds_each_point_itself():
    x, y = _points(40)
    clf = knn_classifier(x, y, n_neighbors=1)
    assert torch.equal(knn_predict(clf, x), y)  # each point is its own nearest neighbour


def test_class_centres_match_numpy_loop_and_representatives_are_nearest():
    x, y = _points(50)
    centres, reps = class_centres(x, y)
    xn, yn = x.numpy(), y.numpy()
    for c in range(4):
        np.testing.assert_allclose(centres[c].numpy(), xn[yn == c].mean(axis=0), rtol=1e-5)
        members = np.flatnonzero(yn == c)
        dists = [np.linalg.norm(xn[i] - centres[c].numpy()) for i in members]
        assert reps[c].item() == members[int(np.argmin(dists))]


def test_class_centres_names_an_empty_class():
    x, y = _points(8, num_classes=2)
    with pytest.raises(ValueError, match="class 2 has no embeddings"):
        class_centres(x, y, num_classes=3)


def test_centre_predict_matches_brute_force():
    x, y = _points(30)
    queries, _ = _points(20, seed=3)
    centres, reps = class_centres(x, y)
    preds = centre_predict(queries, centres)
    for q, p in zip(queries, preds, strict=True):
        assert p.item() == int(np.argmin([np.linalg.norm(q - c) for c in centres]))
    assert torch.equal(centre_classify(queries, x, y), preds)
    by_rep = centre_classify(queries, x, y, use="representative")
    assert torch.equal(by_rep, centre_predict(queries, x[reps]))


def test_nearest_of_class_matches_brute_force_loop():
    train, labels = _points(60)
    queries, _ = _points(25, seed=7)
    classes = torch.arange(25) % 4
    index, dist = nearest_of_class(queries, classes, train, labels)
    for q, c, i, d in zip(queries, classes, index, dist, strict=True):
        best, best_d = -1, float("inf")
        for j in range(len(train)):
            if labels[j] == c and (dj := torch.linalg.norm(q - train[j]).item()) < best_d:
                best, best_d = j, dj
        assert i.item() == best
        assert d.item() == pytest.approx(best_d, rel=1e-5)


def test_nearest_of_class_names_missing_class():
    train, labels = _points(8, num_classes=2)
    with pytest.raises(ValueError, match="class 3"):
        nearest_of_class(train[:2], torch.tensor([0, 3]), train, labels)


# ---------------------------------------------------------------- errors, projection


def test_error_table_equals_per_query_loop():
    train, train_labels = _points(40)
    test, test_labels = _points(30, seed=5)
    preds = knn_predict(knn_classifier(train, train_labels, 3), test)
    table = error_table(test_labels, preds, test, train, train_labels, ["a", "b", "c", "d"])
    wrong = (preds != test_labels).nonzero().flatten()
    assert len(wrong) > 0 and len(table) == len(wrong)
    assert list(table.columns) == list(ERROR_COLUMNS)
    for row, t in zip(table.itertuples(), wrong.tolist(), strict=True):
        assert row.test_index == t and row.true == test_labels[t] and row.pred == preds[t]
        assert row.true_name == "abcd"[row.true] and row.pred_name == "abcd"[row.pred]
        for cls, idx, dist in (
            (row.true, row.nearest_true, row.nearest_true_dist),
            (row.pred, row.nearest_pred, row.nearest_pred_dist),
        ):
            i, d = nearest_of_class(test[t : t + 1], torch.tensor([cls]), train, train_labels)
            assert idx == i.item() and dist == pytest.approx(d.item())


def test_error_table_without_errors_is_empty_with_columns():
    train, train_labels = _points(12)
    table = error_table(train_labels, train_labels, train, train, train_labels)
    assert isinstance(table, pd.DataFrame) and len(table) == 0
    assert list(table.columns) == list(ERROR_COLUMNS)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_project_2d_shape_and_determinism(method):
    x, _ = _points(24, d=6)
    a, b = project_2d(x, method, seed=0), project_2d(x, method, seed=0)
    assert a.shape == (24, 2)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="method"):
        project_2d(x, "umap")
