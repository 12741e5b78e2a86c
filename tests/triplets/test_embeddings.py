"""Tests for labkit.triplets.embeddings: each vectorised search against a brute-force loop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from error_answers import error_answers
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit.data.datasets import TensorImageDataset
from labkit.data.transforms import normalize
from labkit.triplets.embeddings import (
    ERROR_COLUMNS,
    embed,
    error_table,
    knn_classifier,
    knn_predict,
    nearest_neighbours,
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


def test_embed_progress_bar_is_left_as_a_record(monkeypatch):
    """A bar closed with leave=False shows "model not found" once the notebook is reopened."""
    import labkit.triplets.embeddings as embeddings_module

    bars = []

    def recording_tqdm(*args, **kwargs):
        bars.append(kwargs)
        return args[0]

    monkeypatch.setattr(embeddings_module, "tqdm", recording_tqdm)
    embed(_model(), _dataset(), batch_size=8, progress=True)
    assert bars and all(bar.get("leave", True) for bar in bars)


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


def _nearest_loop(query: torch.Tensor, cls: int, train: torch.Tensor, labels: torch.Tensor):
    """(row, distance) of the training point of class `cls` nearest `query`, by a plain loop."""
    best, best_d = -1, float("inf")
    for j in range(len(train)):
        if labels[j] == cls and (dj := torch.linalg.norm(query - train[j]).item()) < best_d:
            best, best_d = j, dj
    return best, best_d


def test_nearest_neighbours_are_the_ones_knn_votes_with():
    train, labels = _points(60)
    queries, _ = _points(25, seed=7)
    index, dist = nearest_neighbours(queries, train, 5)
    clf = knn_classifier(train, labels, n_neighbors=5)
    sk_dist, sk_index = clf.kneighbors(queries.numpy())
    assert torch.equal(index, torch.as_tensor(sk_index))
    np.testing.assert_allclose(dist.numpy(), sk_dist, rtol=1e-5)
    assert (dist[:, 1:] >= dist[:, :-1]).all()  # nearest first


def test_nearest_neighbours_refuses_bad_k_and_shapes():
    train, _ = _points(6)
    with pytest.raises(ValueError, match="k must be an int from 1 to the 6"):
        nearest_neighbours(train, train, 7)
    with pytest.raises(ValueError, match="need queries"):
        nearest_neighbours(train[:, :3], train, 2)


# ---------------------------------------------------------------- errors, projection


def test_error_table_measures_the_given_images_and_lists_the_voters():
    train, train_labels = _points(40)
    test, test_labels = _points(30, seed=5)
    preds = knn_predict(knn_classifier(train, train_labels, 3), test)
    true_rows, pred_rows = error_answers(test, test_labels, preds, train, train_labels)
    table = error_table(
        test_labels,
        preds,
        test,
        train,
        train_labels,
        ["a", "b", "c", "d"],
        nearest_true=true_rows.numpy(),
        nearest_pred=pred_rows,
        neighbors=3,
    )
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
            i, d = _nearest_loop(test[t], cls, train, train_labels)
            assert idx == i and dist == pytest.approx(d, rel=1e-5)
        by_distance = sorted(range(len(train)), key=lambda j: torch.dist(test[t], train[j]).item())
        assert list(row.voters) == by_distance[:3]
        assert list(row.voter_classes) == train_labels[by_distance[:3]].tolist()
        assert np.bincount(row.voter_classes, minlength=4).argmax() == row.pred  # they voted so


def test_error_table_notes_rows_of_another_class_and_refuses_a_wrong_count(capsys):
    train, train_labels = _points(40)
    test, test_labels = _points(30, seed=5)
    preds = knn_predict(knn_classifier(train, train_labels, 3), test)
    true_rows, pred_rows = error_answers(test, test_labels, preds, train, train_labels)
    args = (test_labels, preds, test, train, train_labels)
    table = error_table(*args, nearest_true=pred_rows, nearest_pred=pred_rows)
    assert re.match(r"note: nearest_true: training row \d+ is of class", capsys.readouterr().out)
    assert table["nearest_true"].tolist() == pred_rows.tolist()  # drawn as given
    with pytest.raises(ValueError, match="nearest_pred: need one training row per misclassified"):
        error_table(*args, nearest_true=true_rows, nearest_pred=pred_rows[:-1])


def test_error_table_without_errors_is_empty_with_columns():
    train, train_labels = _points(12)
    empty = torch.empty(0, dtype=torch.long)
    table = error_table(
        train_labels,
        train_labels,
        train,
        train,
        train_labels,
        nearest_true=empty,
        nearest_pred=empty,
    )
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


# ---------------------------------------------------------------- degenerate projections

# Every input lab 03's projection can meet, built in a child process (scikit-learn's t-SNE
# killed the process with a segmentation fault on a collapsed embedding): {case: numpy code}
DEGENERATE = {
    "identical rows": "np.ones((60, 16))",  # a collapsed embedding
    "all zeros": "np.zeros((60, 16))",
    "identical to float32 rounding": "1 + 1e-9 * rng.standard_normal((60, 16))",
    "L2-normalised, nearly one point": "unit(1 + 1e-3 * rng.standard_normal((60, 16)))",
    "spread at 1e-30": "1e-30 * rng.standard_normal((60, 16))",
    "spread at 1e30": "1e30 * rng.standard_normal((60, 16))",
    "rank 1": "np.outer(rng.standard_normal(60), rng.standard_normal(16))",
    "two points, repeated": "np.repeat(rng.standard_normal((2, 16)), 30, axis=0)",
    "one outlier": "np.vstack([np.ones((59, 16)), 2 * np.ones((1, 16))])",
    "three points": "rng.standard_normal((3, 16))",
    "two points": "rng.standard_normal((2, 16))",
    "a NaN row": "with_row(rng.standard_normal((60, 16)), 7, np.nan)",
    "an infinite row": "with_row(rng.standard_normal((60, 16)), 7, np.inf)",
    "one dimension": "rng.standard_normal((60, 1))",
}
CHILD = """
import json, sys, warnings
import numpy as np
from labkit.triplets.embeddings import project_2d

def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)

def with_row(x, row, value):
    x[row] = value
    return x

for case, code in json.loads(sys.argv[1]).items():
    for method in ("pca", "tsne"):
        rng = np.random.default_rng(0)
        x = eval(code).astype(np.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scikit-learn's on the way to the crash
                points = project_2d(x, method)
            found = {"shape": list(points.shape), "finite": bool(np.isfinite(points).all()),
                     "spread": float(np.ptp(points, axis=0).min())}
        except Exception as err:  # reported, so that the test names it
            found = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps({"case": case, "method": method, **found}), flush=True)
"""
# what each case must give: a plot's points, or an error whose message holds these words
ERRORS = {
    "identical rows": "collapsed",
    "all zeros": "collapsed",
    "identical to float32 rounding": "collapsed",
    "two points": "at least 3",
    "a NaN row": "NaN or infinite",
    "an infinite row": "NaN or infinite",
    "one dimension": "at least 2 dimensions",
}


@pytest.fixture(scope="module")
def degenerate_projections() -> dict[tuple[str, str], dict]:
    argv = [sys.executable, "-c", CHILD, json.dumps(DEGENERATE)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (  # -11: a segmentation fault; the last case printed before
        f"exit {done.returncode} after {found[-1:]}: {done.stderr[-2000:]}"
    )
    return {(row.pop("case"), row.pop("method")): row for row in found}


@pytest.mark.kernel  # the projections run in a python child process
@pytest.mark.parametrize("method", ["pca", "tsne"])
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_project_2d_gives_points_or_says_what_happened(degenerate_projections, case, method):
    found = degenerate_projections[case, method]
    if case in ERRORS:
        message = found.get("error", "")
        assert message.startswith("ValueError") and ERRORS[case] in message, found
        assert "try" in message.lower(), found  # what to do about it
    else:
        assert "error" not in found, found
        assert found["shape"][1] == 2 and found["finite"] and found["spread"] > 0, found


def test_project_2d_names_the_rows_that_are_not_finite():
    x, _ = _points(10, d=4)
    x[3, 1], x[6, 0] = float("nan"), float("inf")
    with pytest.raises(ValueError, match=r"2 of the 10 embeddings hold NaN or infinite .*row 3"):
        project_2d(x, "tsne")
