"""Lab 03's graded questions, each checked in-process as the grader does (`run_checks`).

For every question: (a) the model answer gets full marks, (b) a correct answer in another form
(NumPy arrays, other integer and float types, loops over classes) gets full marks, (c) a
plausible wrong answer gets no marks and a message a student can act on. Answer and probe cells
run from the solutions notebook, on small embeddings made here in place of a trained network.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from questions import Lab, run_cells
from sklearn.neighbors import KNeighborsClassifier

from labkit.grading.checks import HIDDEN_FAILED

LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "03_facenet_knn.ipynb")
QUESTIONS = LAB.questions
_grade, _model, _probe, _full = LAB.grade, LAB.answer, LAB.probe, LAB.full


def _space() -> dict:
    """What the lab's cells before a question define, at a small size."""
    g = torch.Generator().manual_seed(0)
    train_emb, test_emb = torch.randn(200, 8, generator=g), torch.randn(60, 8, generator=g)
    train_lab, test_lab = torch.arange(200) % 10, torch.arange(60) % 10
    train_emb += 1.5 * F.one_hot(train_lab, 8 + 2)[:, :8]  # classes 0..7 a little apart
    test_emb += 1.5 * F.one_hot(test_lab, 8 + 2)[:, :8]
    knn = KNeighborsClassifier(5).fit(train_emb.numpy(), train_lab.numpy())
    knn_preds = torch.as_tensor(knn.predict(test_emb.numpy()), dtype=torch.long)
    return {
        "torch": torch, "np": np, "pd": pd, "F": F,
        "lab": SimpleNamespace(seed=0), "data": SimpleNamespace(num_classes=10),
        "settings": SimpleNamespace(margin=2.0),
        "train_emb": train_emb, "train_lab": train_lab, "train_labels": train_lab,
        "test_emb": test_emb, "test_lab": test_lab, "knn_preds": knn_preds,
    }  # fmt: skip


WITH_PROBE = ("q3_triplet_loss", "q3_chosen", "bonus_miner")  # a cell after the answer runs it


def _run(*sources: str) -> dict:
    return run_cells(_space(), *sources)


def test_every_code_question_is_tested_here() -> None:
    assert set(QUESTIONS) == {
        "q3_triplet_loss",
        "q3_chosen",
        "q4_centres",
        "q5_nearest",
        "bonus_miner",
    }


@pytest.mark.parametrize("grade_id", sorted(QUESTIONS))
def test_model_answers_get_full_marks(grade_id: str) -> None:
    sources = [_model(grade_id)]
    if grade_id in WITH_PROBE:
        sources.append(_probe(grade_id))
    assert _grade(grade_id, _run(*sources)) == (_full(grade_id), "")


OTHER_FORMS = {
    "q3_triplet_loss": """
def triplet_loss(anchor, positive, negative, margin):  # float64, pairwise_distance, a float
    a, p, n = (t.double() for t in (anchor, positive, negative))
    gap = torch.linalg.vector_norm(a - p, dim=1) - torch.linalg.vector_norm(a - n, dim=1)
    return float(torch.relu(gap + margin).mean())
""",
    "q3_chosen": """
def chosen_triplets(labels, num_triplets, positive_class, negative_class, rng):  # NumPy, int32
    labels = np.asarray(labels)
    threes = np.flatnonzero(labels == positive_class)
    eights = np.flatnonzero(labels == negative_class)
    if len(threes) < 2:
        raise ValueError("need two images of the positive class")
    pairs = np.array([rng.choice(threes, 2, replace=False) for _ in range(num_triplets)])
    return np.column_stack([pairs, rng.choice(eights, num_triplets)]).astype(np.int32)
""",
    "q4_centres": """
emb, lab_ = train_emb.double().numpy(), train_lab.numpy()
q4_centres = np.stack([emb[lab_ == c].mean(0) for c in range(num_classes)])  # float64 NumPy
q4_representatives = np.array(
    [np.flatnonzero(lab_ == c)[np.argmin(np.linalg.norm(emb[lab_ == c] - q4_centres[c], axis=1))]
     for c in range(num_classes)], dtype=np.int32)
dist = np.linalg.norm(test_emb.numpy()[:, None] - emb[q4_representatives][None], axis=2)
q4_preds = dist.argmin(1).astype(np.int16)
""",
    "q5_nearest": """
wrong = np.flatnonzero(knn_preds.numpy() != test_lab.numpy())
q5_wrong = wrong.astype(np.int32)
def nearest(t, c):
    rows = np.flatnonzero(train_lab.numpy() == c)
    return rows[np.argmin(np.linalg.norm(train_emb.numpy()[rows] - test_emb.numpy()[t], axis=1))]
q5_nearest_true = np.array([nearest(t, test_lab[t]) for t in wrong])
q5_nearest_pred = [int(nearest(t, knn_preds[t])) for t in wrong]
""",
    "bonus_miner": """
def batch_hard_triplets(embeddings, labels):  # a loop per anchor, NumPy out
    x, y = embeddings.double().numpy(), labels.numpy()
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    out = []
    for a in range(len(y)):
        pos = [j for j in range(len(y)) if y[j] == y[a] and j != a]
        neg = [j for j in range(len(y)) if y[j] != y[a]]
        if pos and neg:
            out.append((a, max(pos, key=lambda j: d[a, j]), min(neg, key=lambda j: d[a, j])))
    return tuple(np.array(column, dtype=np.int32) for column in zip(*out))
""",
}


@pytest.mark.parametrize("grade_id", sorted(OTHER_FORMS))
def test_answers_in_other_forms_get_full_marks(grade_id: str) -> None:
    sources = [LAB.given(grade_id), OTHER_FORMS[grade_id]]
    if grade_id in WITH_PROBE:
        sources.append(_probe(grade_id))
    assert _grade(grade_id, _run(*sources)) == (_full(grade_id), "")


WRONG = [
    (  # squared distances, FaceNet's form: not the loss this lab defines
        "q3_triplet_loss",
        "def triplet_loss(a, p, n, margin):\n"
        "    return ((a - p).pow(2).sum(1) - (a - n).pow(2).sum(1) + margin).clamp(min=0).mean()",
        "margin 0.5: your loss is",
    ),
    (  # summed, not averaged
        "q3_triplet_loss",
        "def triplet_loss(a, p, n, margin):\n"
        "    gap = F.pairwise_distance(a, p) - F.pairwise_distance(a, n)\n"
        "    return (gap + margin).clamp(min=0).sum()",
        "mean over the triplets",
    ),
    (  # anchor and positive drawn independently: sometimes the same image
        "q3_chosen",
        "def chosen_triplets(labels, n, positive_class, negative_class, rng):\n"
        "    labels = np.asarray(labels)\n"
        "    threes = np.flatnonzero(labels == positive_class)\n"
        "    eights = np.flatnonzero(labels == negative_class)\n"
        "    return np.stack([rng.choice(threes, n), rng.choice(threes, n),"
        " rng.choice(eights, n)], 1)",
        "anchor and positive must be two different images",
    ),
    (  # right triplets, but drawn from a generator of its own
        "q3_chosen",
        "_chosen = chosen_triplets\n"
        "def chosen_triplets(labels, n, positive_class, negative_class, rng):\n"
        "    return _chosen(labels, n, positive_class, negative_class, np.random.default_rng())",
        "the same seed gave other triplets: draw every random choice from rng",
    ),
    (  # a class too small for a pair quietly gives no triplets
        "q3_chosen",
        "_chosen = chosen_triplets\n"
        "def chosen_triplets(labels, n, positive_class, negative_class, rng):\n"
        "    if int((torch.as_tensor(np.asarray(labels)) == positive_class).sum()) < 2:\n"
        "        return np.zeros((0, 3), dtype=np.int64)\n"
        "    return _chosen(labels, n, positive_class, negative_class, rng)",
        "a class with a single image should raise ValueError; yours gave: nothing raised",
    ),
    (  # the first image of each class, not the nearest to its mean
        "q4_centres",
        "firsts = [torch.nonzero(train_lab == c)[0, 0] for c in range(10)]\n"
        "q4_representatives = torch.stack(firsts)",
        "q4_representatives: class 0's image nearest its mean is not row",
    ),
    (  # centres transposed
        "q4_centres",
        "q4_centres = q4_centres.T",
        "q4_centres: one centre of size d per class, (10, 8)",
    ),
    (  # the nearest training image of any class, not of the predicted one
        "q5_nearest",
        "q5_nearest_pred = torch.cdist(test_emb[q5_wrong], train_emb).argmin(dim=1)",
        "q5_nearest_pred: images of the predicted class",
    ),
    (  # right classes, not the nearest images
        "q5_nearest",
        "first = torch.stack([torch.nonzero(train_lab == c)[0, 0] for c in range(10)])\n"
        "q5_nearest_pred = first[knn_preds[q5_wrong]]",
        HIDDEN_FAILED,
    ),
    (  # the nearest positive, not the farthest
        "bonus_miner",
        "_mine = batch_hard_triplets\n"
        "def batch_hard_triplets(x, y):\n"
        "    a, p, n = _mine(x, y)\n"
        "    other = (y[:, None] != y[None]) | torch.eye(len(y), dtype=torch.bool)\n"
        "    d = torch.cdist(x, x).masked_fill(other, 1e9)\n"
        "    return a, d.argmin(1)[a], n",
        "the positive should be the farthest image of its class",
    ),
]


@pytest.mark.parametrize(("grade_id", "change", "message"), WRONG)
def test_plausible_wrong_answers_get_no_marks_and_say_why(
    grade_id: str, change: str, message: str
) -> None:
    sources = [_model(grade_id), change]
    if grade_id in WITH_PROBE:
        sources.append(_probe(grade_id))
    points, got = _grade(grade_id, _run(*sources))
    assert points == 0.0 and message in got, got
