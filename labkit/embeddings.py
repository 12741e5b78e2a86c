"""Embed a dataset once, then classify and search in embedding space (lab 03's test and questions).

- `embed`: one batched pass in eval mode -> (embeddings (N, D), labels (N,)) on the CPU;
- KNN (`knn_classifier`, `knn_predict`) and class-centre prediction (`class_centres`,
  `centre_predict`, `centre_classify`: Question 4);
- nearest training images (`nearest_of_class`) and the table of misclassified test images with
  the nearest training image of the true and of the predicted class (`error_table`: Question 5);
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

from labkit.data.tensor_dataset import TensorImageDataset, normalize
from labkit.model_utils import eval_mode, model_device, to_device

if TYPE_CHECKING:  # scikit-learn is imported where used: it takes a second or two
    from sklearn.neighbors import KNeighborsClassifier

__all__ = [
    "ERROR_COLUMNS",
    "centre_classify",
    "centre_predict",
    "class_centres",
    "embed",
    "error_table",
    "knn_classifier",
    "knn_predict",
    "nearest_of_class",
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
        for batch in tqdm(batches, total=total, desc="embed", disable=not progress, leave=False):
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


def nearest_of_class(
    query_embeddings: Any,
    query_classes: Any,
    train_embeddings: Any,
    train_labels: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the training image of the given class nearest to it.

    Args:
        query_embeddings: (Q, D).
        query_classes: (Q,) the class to search in, per query.
        train_embeddings: (N, D); train_labels: (N,).
    Returns:
        (indices (Q,) int64 into the training set, distances (Q,) float32).
    Used in: 03_facenet_knn (Question 5, through `error_table`).
    """
    train = _tensor(train_embeddings, torch.float32)
    labels = _tensor(train_labels).to(train.device).long()
    queries = _tensor(query_embeddings, torch.float32).to(train.device)
    classes = _tensor(query_classes).to(train.device).long()
    _check_pair(train, labels, "nearest_of_class (training set)")
    _check_pair(queries, classes, "nearest_of_class (queries)")
    if queries.shape[1] != train.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} dims, training embeddings {train.shape[1]}"
        )
    missing = sorted(set(classes.unique().tolist()) - set(labels.unique().tolist()))
    if missing:
        raise ValueError(
            f"no training image of class {missing[0]}"
            f"{f' (nor of {missing[1:]})' if len(missing) > 1 else ''}; every class searched "
            "needs at least one training image"
        )
    indices, distances = [], []
    step = max(1, _MAX_BLOCK // max(len(train), 1))  # query rows per chunk
    for start in range(0, len(queries), step):
        chunk, wanted = queries[start : start + step], classes[start : start + step]
        dist = _cdist(chunk, train)  # (q, N)
        dist = dist.masked_fill(labels[None, :] != wanted[:, None], float("inf"))
        best = dist.min(dim=1)
        indices.append(best.indices)
        distances.append(best.values)
    if not indices:
        return torch.empty(0, dtype=torch.long), torch.empty(0)
    return torch.cat(indices), torch.cat(distances)


def class_centres(
    embeddings: Any, labels: Any, num_classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class's mean embedding and the index of its own image nearest that mean (Question 4).

    Args:
        embeddings: (N, D) training embeddings; labels: (N,) in [0, num_classes).
        num_classes: default max(labels) + 1; every class must have an embedding.
    Returns:
        (centres (C, D) float32, representatives (C,) int64 indices into `embeddings`).
    Used in: 03_facenet_knn.
    """
    x, y = _tensor(embeddings, torch.float32), _tensor(labels).long()
    _check_pair(x, y, "class_centres")
    if len(y) == 0:
        raise ValueError("class_centres got no embeddings")
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}"
        )
    counts = torch.bincount(y, minlength=num_classes)  # (C,)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"class {empty[0]} has no embeddings (empty classes: {empty})")
    sums = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, y, x)
    centres = sums / counts[:, None].to(x.device)  # (C, D)
    representatives, _ = nearest_of_class(centres, torch.arange(num_classes), x, y)
    return centres, representatives


def centre_predict(embeddings: Any, centres: Any) -> torch.Tensor:
    """The index of the nearest centre (C, D) for each embedding (Q, D): predicted classes (Q,).

    Pass `train_embeddings[representatives]` as `centres` to predict with each class's
    representative image instead of its mean.
    Used in: 03_facenet_knn (Question 4).
    """
    x, c = _tensor(embeddings, torch.float32), _tensor(centres, torch.float32)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(
            f"need embeddings (Q, D) and centres (C, D), got {tuple(x.shape)} and {tuple(c.shape)}"
        )
    return _cdist(x, c.to(x.device)).argmin(dim=1)


def centre_classify(
    query_embeddings: Any,
    train_embeddings: Any,
    train_labels: Any,
    *,
    use: Literal["mean", "representative"] = "mean",
    num_classes: int | None = None,
) -> torch.Tensor:
    """Predicted classes (Q,) by the nearest class mean, or nearest representative image.

    `use="representative"` follows the handout's wording: find the training image nearest each
    class mean, then predict by the nearest of those images.
    Used in: 03_facenet_knn (Question 4).
    """
    if use not in ("mean", "representative"):
        raise ValueError(f"use must be 'mean' or 'representative', got {use!r}")
    centres, representatives = class_centres(train_embeddings, train_labels, num_classes)
    if use == "representative":
        centres = _tensor(train_embeddings, torch.float32)[representatives]
    return centre_predict(query_embeddings, centres)


# ---------------------------------------------------------------- errors and projections


def error_table(
    test_labels: Any,
    preds: Any,
    test_embeddings: Any,
    train_embeddings: Any,
    train_labels: Any,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per misclassified test image, with the nearest training image of each class.

    All searches are one masked `torch.cdist` over the given embeddings: embed the training set
    once (`embed`), never per error.

    Returns:
        a DataFrame with columns `ERROR_COLUMNS`: test index, true and predicted class (index
        and name; the name is the index as text without `class_names`), and for the true and
        the predicted class the nearest training image's index and distance.
    Used in: 03_facenet_knn (Question 5).
    """
    labels, preds = _tensor(test_labels).long().cpu(), _tensor(preds).long().cpu()
    test = _tensor(test_embeddings, torch.float32)
    if labels.shape != preds.shape or labels.ndim != 1:
        raise ValueError(
            f"need test_labels and preds of the same shape (N,), got {tuple(labels.shape)} "
            f"and {tuple(preds.shape)}"
        )
    _check_pair(test, labels, "error_table (test set)")
    wrong = (preds != labels).nonzero().flatten()  # (E,)
    true, pred = labels[wrong], preds[wrong]
    queries = test[wrong.to(test.device)]
    # both searches in one call: the first E rows look in the true class, the last E in the
    # predicted one
    index, dist = nearest_of_class(
        torch.cat([queries, queries]), torch.cat([true, pred]), train_embeddings, train_labels
    )
    index, dist = index.cpu(), dist.cpu()
    num_errors = len(wrong)

    def name(label: int) -> str:
        return str(class_names[label]) if class_names is not None else str(label)

    return pd.DataFrame(
        {
            "test_index": wrong.numpy(),
            "true": true.numpy(),
            "pred": pred.numpy(),
            "true_name": [name(c) for c in true.tolist()],
            "pred_name": [name(c) for c in pred.tolist()],
            "nearest_true": index[:num_errors].numpy(),
            "nearest_true_dist": dist[:num_errors].numpy(),
            "nearest_pred": index[num_errors:].numpy(),
            "nearest_pred_dist": dist[num_errors:].numpy(),
        },
        columns=list(ERROR_COLUMNS),
    )


def project_2d(
    embeddings: Any, method: Literal["pca", "tsne"] = "pca", seed: int = 0
) -> np.ndarray:
    """Embeddings (N, D) as (N, 2) points by PCA or t-SNE (scikit-learn), deterministic in `seed`.

    t-SNE starts from the PCA layout; its perplexity is capped at (N - 1) / 3 for small N.
    Used in: 03_facenet_knn (embedding plot).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = _tensor(embeddings, torch.float32).cpu().numpy()
    if x.ndim != 2 or len(x) < 3 or x.shape[1] < 2:
        raise ValueError(f"project_2d needs embeddings (N >= 3, D >= 2), got {x.shape}")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
        return tsne.fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
