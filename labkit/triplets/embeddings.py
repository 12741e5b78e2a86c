"""Embed a dataset once, then classify and search in embedding space (lab 03's test and questions).

- `embed`: one batched pass in eval mode -> (embeddings (N, D), labels (N,)) on the CPU;
- KNN (`knn_classifier`, `knn_predict`) and the neighbours that vote (`nearest_neighbours`);
- the table of misclassified test images (`error_table`: Question 5) with the student's nearest
  true-class and predicted-class images and the k neighbours that voted;
  class centres and the nearest images of a class are what students write (Questions 4, 5), so
  labkit has no function that computes them;
- `project_2d`: PCA or t-SNE to draw the embedding.

The handout re-embeds the whole training set for every misclassified image (twice); here the
training set is embedded once and every search is one masked `torch.cdist`.

Used in: 03_facenet_knn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from tqdm.auto import tqdm

from labkit.data.datasets import TensorImageDataset
from labkit.data.transforms import normalize
from labkit.training.model_utils import eval_mode, model_device, to_device

if TYPE_CHECKING:  # scikit-learn is imported where used: it takes a second or two
    from sklearn.neighbors import KNeighborsClassifier

__all__ = [
    "ERROR_COLUMNS",
    "embed",
    "error_table",
    "knn_classifier",
    "knn_predict",
    "nearest_neighbours",
    "project_2d",
]

ERROR_COLUMNS = (
    "test_index",  # row of the test set
    "true",  # true class index
    "pred",  # predicted class index
    "true_name",
    "pred_name",
    "nearest_true",  # training index of the nearest image of the true class
    "nearest_true_dist",
    "nearest_pred",  # training index of the nearest image of the predicted class
    "nearest_pred_dist",
    "voters",  # tuple: training rows of the k neighbours that voted, nearest first
    "voter_classes",
    "voter_dists",
)
_SHUFFLING = (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)
_MAX_BLOCK = 2**24  # distance-matrix entries per chunk of queries (64 MiB of float32)


# ---------------------------------------------------------------- embedding


def _check_order(loader: DataLoader) -> None:
    """Raise unless `loader` yields the dataset in order (row i of the result must be item i)."""
    samplers = [loader.sampler, getattr(loader.batch_sampler, "sampler", None)]
    custom = loader.batch_sampler is not None and not isinstance(loader.batch_sampler, BatchSampler)
    if custom or any(isinstance(s, _SHUFFLING) for s in samplers):
        raise ValueError(
            "embed needs a loader that yields the dataset in order, so that row i of the "
            "embeddings is image i (for nearest-image look-ups); build it with shuffle=False "
            "and no sampler, or pass the dataset itself"
        )


def _tensor_batches(
    dataset: TensorImageDataset, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalised images, labels) slices of the stored images, without the augmentation."""
    for start in range(0, len(dataset), batch_size):
        stop = start + batch_size
        yield normalize(dataset.images[start:stop]), dataset.labels[start:stop]


def _batches(data: Dataset | DataLoader, batch_size: int) -> tuple[Any, int]:
    """An iterable of (inputs, labels) batches over `data` in order, and its length."""
    if isinstance(data, DataLoader):
        _check_order(data)
        return data, len(data)
    if isinstance(data, TensorImageDataset):
        return _tensor_batches(data, batch_size), -(-len(data) // batch_size)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    return loader, len(loader)


def embed(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings and labels of every item of `data`, in order, from one pass in eval mode.

    A `TensorImageDataset` is embedded without its augmentation (`transform`): the embeddings
    describe the stored images, as the handout's KNN uses un-augmented training images. Pass a
    DataLoader (unshuffled) to embed exactly what it yields. The model's training flags are
    restored afterwards; inputs go to the model's device.

    Args:
        model: maps a batch of inputs to (B, D) embeddings.
        data: a Dataset of (input, label) items, or a DataLoader of such batches in order.
        batch_size: images per forward pass (ignored for a DataLoader).
        progress: show a `tqdm.auto` bar over the batches.
    Returns:
        (embeddings (N, D) float32, labels (N,) int64), both on the CPU.
    Used in: 03_facenet_knn.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batches, total = _batches(data, batch_size)
    device = model_device(model)
    outputs, labels = [], []
    with eval_mode(model), torch.no_grad():
        # leave=True: a bar closed with leave=False leaves a widget output that cannot be
        # restored after the notebook is saved and reopened ("model not found")
        for batch in tqdm(batches, total=total, desc="embed", disable=not progress, leave=True):
            if not isinstance(batch, (list, tuple)) or len(batch) != 2:
                raise ValueError(
                    f"embed expects (inputs, labels) batches, got {type(batch).__name__}; "
                    "make the dataset return (image, label) pairs"
                )
            inputs, targets = batch
            outputs.append(model(to_device(inputs, device)).float().cpu())
            labels.append(torch.as_tensor(targets).long().cpu())
    if not outputs:
        raise ValueError("embed got an empty dataset; check the split has images")
    return torch.cat(outputs), torch.cat(labels)


# ---------------------------------------------------------------- classifiers


def _tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """`x` (tensor, array or sequence) as a detached tensor (on its own device) of `dtype`."""
    x = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return x if dtype is None else x.to(dtype)


def _check_pair(embeddings: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
        raise ValueError(
            f"{what}: need embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} "
            f"and {tuple(labels.shape)}"
        )


def knn_classifier(
    train_embeddings: Any, train_labels: Any, n_neighbors: int = 5
) -> KNeighborsClassifier:
    """A scikit-learn KNN classifier fitted on the training embeddings (N, D) and labels (N,).

    Used in: 03_facenet_knn.
    """
    from sklearn.neighbors import KNeighborsClassifier

    x, y = _tensor(train_embeddings, torch.float32).cpu(), _tensor(train_labels).cpu()
    _check_pair(x, y, "knn_classifier")
    if n_neighbors > len(x):
        raise ValueError(f"n_neighbors={n_neighbors} exceeds the {len(x)} training embeddings")
    return KNeighborsClassifier(n_neighbors=n_neighbors).fit(x.numpy(), y.numpy())


def knn_predict(classifier: KNeighborsClassifier, embeddings: Any) -> torch.Tensor:
    """Predicted classes (Q,) int64 of query embeddings (Q, D). Used in: 03_facenet_knn."""
    x = _tensor(embeddings, torch.float32).cpu().numpy()
    return torch.as_tensor(classifier.predict(x), dtype=torch.long)


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # no matrix-product shortcut: it rounds small distances, and nearest images must be exact
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def nearest_neighbours(
    query_embeddings: Any, train_embeddings: Any, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` training embeddings nearest each query (Euclidean), nearest first.

    These are the neighbours a k-NN classifier (scikit-learn's default, Euclidean) votes with.

    Args:
        query_embeddings: (Q, D); train_embeddings: (N, D); k: 1 <= k <= N.
    Returns:
        (indices (Q, k) int64 into the training set, distances (Q, k) float32).
    Used in: 03_facenet_knn (the voters shown in Question 5's gallery, through `error_table`).
    """
    train = _tensor(train_embeddings, torch.float32)
    queries = _tensor(query_embeddings, torch.float32).to(train.device)
    if train.ndim != 2 or queries.ndim != 2 or queries.shape[1] != train.shape[1]:
        raise ValueError(
            f"need queries (Q, D) and training embeddings (N, D), got {tuple(queries.shape)} "
            f"and {tuple(train.shape)}"
        )
    if not isinstance(k, int) or not 1 <= k <= len(train):
        raise ValueError(
            f"k must be an int from 1 to the {len(train)} training embeddings, got {k!r}"
        )
    indices, distances = [], []
    step = max(1, _MAX_BLOCK // max(len(train), 1))  # query rows per chunk
    for start in range(0, len(queries), step):
        best = _cdist(queries[start : start + step], train).topk(k, dim=1, largest=False)
        indices.append(best.indices)
        distances.append(best.values)
    if not indices:
        return torch.empty(0, k, dtype=torch.long), torch.empty(0, k)
    return torch.cat(indices).cpu(), torch.cat(distances).cpu()


# ---------------------------------------------------------------- errors and projections


def _check_rows(rows: torch.Tensor, classes: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """`rows` (E,) must index training images (else ValueError); a row of another class than
    `want` (E,) gets a printed note."""
    if rows.shape != want.shape:
        raise ValueError(
            f"{what}: need one training row per misclassified test image ({len(want)}), "
            f"got shape {tuple(rows.shape)}"
        )
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= len(classes)):
        raise ValueError(f"{what}: rows must lie in [0, {len(classes)}), the training set")
    wrong = (classes[rows] != want).nonzero().flatten()
    if len(wrong):  # drawn as given, so later cells run; a printed line (a warning would show
        # the path of the kernel's temporary cell file)
        row = int(rows[wrong[0]])
        print(
            f"note: {what}: training row {row} is of class {int(classes[row])}, not "
            f"{int(want[wrong[0]])} ({len(wrong)} such rows); fix your Question 5 answer"
        )


def error_table(
    test_labels: Any,
    preds: Any,
    test_embeddings: Any,
    train_embeddings: Any,
    train_labels: Any,
    class_names: Sequence[str] | None = None,
    *,
    nearest_true: Any,
    nearest_pred: Any,
    neighbors: int = 5,
) -> pd.DataFrame:
    """One row per misclassified test image: the images it was compared with, and their distances.

    `nearest_true` and `nearest_pred` are the training rows of the nearest image of the true and
    of the predicted class, one per error in test order (the student's answer to Question 5);
    this function checks their classes and measures their distances. It adds the `neighbors`
    training images that voted in the k-NN prediction, nearest first.

    Returns:
        a DataFrame with columns `ERROR_COLUMNS`: test index, true and predicted class (index
        and name; the name is the index as text without `class_names`), the nearest true-class
        and predicted-class rows with their distances, and the voters' rows, classes and
        distances (tuples of `neighbors` values).
    Raises:
        ValueError when the labels and predictions differ in shape, or `nearest_true` /
        `nearest_pred` do not hold one training row per error; a row of the wrong class only
        prints a note (the gallery draws it), so later cells still run.
    Used in: 03_facenet_knn (Question 5).
    """
    labels, preds = _tensor(test_labels).long().cpu(), _tensor(preds).long().cpu()
    test = _tensor(test_embeddings, torch.float32).cpu()
    train = _tensor(train_embeddings, torch.float32).cpu()
    train_classes = _tensor(train_labels).long().cpu()
    if labels.shape != preds.shape or labels.ndim != 1:
        raise ValueError(
            f"need test_labels and preds of the same shape (N,), got {tuple(labels.shape)} "
            f"and {tuple(preds.shape)}"
        )
    _check_pair(test, labels, "error_table (test set)")
    _check_pair(train, train_classes, "error_table (training set)")
    wrong = (preds != labels).nonzero().flatten()  # (E,)
    true, pred = labels[wrong], preds[wrong]
    rows_true = _tensor(nearest_true).long().cpu().reshape(-1)
    rows_pred = _tensor(nearest_pred).long().cpu().reshape(-1)
    _check_rows(rows_true, train_classes, true, "nearest_true")
    _check_rows(rows_pred, train_classes, pred, "nearest_pred")
    queries = test[wrong]
    voters, voter_dists = nearest_neighbours(queries, train, neighbors)

    def name(label: int) -> str:
        return str(class_names[label]) if class_names is not None else str(label)

    return pd.DataFrame(
        {
            "test_index": wrong.numpy(),
            "true": true.numpy(),
            "pred": pred.numpy(),
            "true_name": [name(c) for c in true.tolist()],
            "pred_name": [name(c) for c in pred.tolist()],
            "nearest_true": rows_true.numpy(),
            "nearest_true_dist": (queries - train[rows_true]).norm(dim=1).numpy(),
            "nearest_pred": rows_pred.numpy(),
            "nearest_pred_dist": (queries - train[rows_pred]).norm(dim=1).numpy(),
            "voters": [tuple(v) for v in voters.tolist()],
            "voter_classes": [tuple(train_classes[v].tolist()) for v in voters],
            "voter_dists": [tuple(round(d, 4) for d in v) for v in voter_dists.tolist()],
        },
        columns=list(ERROR_COLUMNS),
    )


def project_2d(
    embeddings: Any, method: Literal["pca", "tsne"] = "pca", seed: int = 0
) -> np.ndarray:
    """Embeddings (N, D) as (N, 2) float32 points by PCA or t-SNE (scikit-learn),
    deterministic in `seed`.

    t-SNE starts from the PCA layout of the embeddings centred and scaled to unit size (its
    result does not depend on their scale, and a scale of 1e-30 or 1e30 neither underflows
    nor overflows); its perplexity is capped at (N - 1) / 3 for small N.

    Raises:
        ValueError that says what happened and what to try, before scikit-learn sees the
        input: not (N, D) with N >= 3 and D >= 2; rows holding NaN or infinity (a diverged
        training); every embedding at one point (a collapsed triplet training, on which
        scikit-learn's t-SNE crashes the process with a segmentation fault).
    Used in: 03_facenet_knn (embedding plot).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    x = _projectable(_tensor(embeddings, torch.float64).cpu().numpy())
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    centred = x - x.mean(axis=0)
    unit = centred / np.sqrt((centred**2).sum(axis=1).mean())  # mean squared norm 1
    perplexity = min(30.0, (len(x) - 1) / 3)
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
    return tsne.fit_transform(unit).astype(np.float32)


def _projectable(x: np.ndarray) -> np.ndarray:
    """`x` (N, D) float64, scaled by its largest magnitude, or ValueError saying what is wrong."""
    if x.ndim != 2 or len(x) < 3 or x.shape[1] < 2:
        raise ValueError(
            f"project_2d needs embeddings (N, D) of at least 3 points and at least 2 dimensions, "
            f"got shape {x.shape}; try embedding more images, or a model whose output has 2 or "
            "more dimensions"
        )
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of the {len(x)} embeddings hold NaN or infinite values (row "
            f"{int(bad.argmax())} first): the training diverged or the network overflowed. Try "
            "training again with a lower learning rate, or keep the finite rows: "
            "embeddings[torch.isfinite(embeddings).all(dim=1)]"
        )
    size = float(np.abs(x).max())
    x = x / size if size > 0 else x  # magnitudes in [0, 1]: no overflow below
    spread = float(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).max()))
    norm = float(np.sqrt((x**2).sum(axis=1).max()))
    if spread <= _COLLAPSED * norm:  # also all zeros
        raise ValueError(
            f"the embedding has collapsed: all {len(x)} points lie within "
            f"{spread * size:.2g} of their mean (their norm is up to {norm * size:.3g}), so no "
            "projection has anything to show (and t-SNE would crash on it). Triplet training "
            "collapses when every image gets the same embedding, the loss stuck at the margin, "
            "a known failure when the learning rate is too high: try training again with a 10x "
            "lower learning rate, and check that the loss falls below the margin"
        )
    return x


_COLLAPSED = 1e-6  # spread / norm below which the points are one (float32 keeps ~7 digits)
