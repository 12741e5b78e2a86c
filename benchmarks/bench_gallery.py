"""Lab 03's error gallery data: labkit's one embedding pass vs the handout's re-embedding per error.

For each misclassified test image, find the nearest training image of its true class and of its
predicted class (Question 5). (a) labkit: `embed` the training set once, then `error_table`
(one masked `torch.cdist`); (b) the handout's `find_nearest_image`, written plainly: for every
error, twice (true and predicted class), re-embed the whole training set (DataLoader, batch 32,
shuffle=False) and loop over the training features in Python with `np.linalg.norm`. Same
process, same model (`resnet18_embedding`, random weights, eval mode), the built-in digits'
training images at 32 px (full profile), without augmentation; both start from the same test
embeddings and predictions (not timed). The handout's bug (`min_index = 0` at the first image
of the class instead of its index) is fixed so both give the same images.

Usage: python benchmarks/bench_gallery.py [--errors 20] [--root DIR] [--train-per-class N]
                                          [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import best_time
from torch import nn
from torch.utils.data import DataLoader

from labkit.data import load_digits_data
from labkit.data.datasets import TensorImageDataset
from labkit.labs.facenet_knn import settings
from labkit.models.resnet import resnet18_embedding
from labkit.triplets.embeddings import embed, error_table, knn_classifier, knn_predict


def handout_find_nearest(
    feature: np.ndarray, label: int, model: nn.Module, train_set: TensorImageDataset
) -> tuple[int, float]:
    """The handout's find_nearest_image: embed the whole training set, then a Python loop."""
    model.eval()
    loader = DataLoader(train_set, batch_size=32, shuffle=False)
    features, targets = [], []
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            features.extend(output.cpu().numpy())
            targets.extend(target.cpu().numpy())
    min_index, min_dist = -1, 0.0
    for index in range(len(features)):
        if targets[index] == label:
            dist = np.linalg.norm(feature - features[index])
            if min_index == -1 or dist < min_dist:
                min_index, min_dist = index, dist
    return min_index, float(min_dist)


def handout_gallery(
    model: nn.Module,
    train_set: TensorImageDataset,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    preds: np.ndarray,
) -> list[tuple[int, float, int, float]]:
    """Per error: (nearest true-class index, distance, nearest predicted-class index, distance)."""
    rows = []
    for index in range(len(test_features)):
        if preds[index] != test_labels[index]:
            true = handout_find_nearest(test_features[index], test_labels[index], model, train_set)
            pred = handout_find_nearest(test_features[index], preds[index], model, train_set)
            rows.append((*true, *pred))
    return rows


def run(
    root: Path, num_errors: int, train_per_class: int | None, repeats: int
) -> dict[str, float | int]:
    """Time both ways of building the gallery data for the first `num_errors` test errors.

    labkit's embedding pass is the best of `repeats`; the handout's way (2 x num_errors passes)
    runs once.
    """
    profile = settings("full", train_per_class=train_per_class)
    data = load_digits_data(
        image_size=profile.image_size, train_per_class=train_per_class, root=root, verbose=False
    )
    train_set = data.train.with_transform(None)  # the handout embeds un-augmented images
    torch.manual_seed(0)
    model = resnet18_embedding().eval()
    with torch.no_grad():  # warm-up, not timed: the first forward pays one-off set-up costs
        model(torch.zeros(2, 3, profile.image_size, profile.image_size))

    # (a) labkit, part 1: the one embedding pass (its result also gives the predictions below);
    # best of `repeats`, as it is short enough to be hit by a busy machine's noise
    embed_s, (train_embeddings, train_labels) = best_time(lambda: embed(model, train_set), repeats)

    # setup, not timed: test embeddings and KNN predictions; keep test images up to the
    # num_errors-th error, so both ways see exactly num_errors errors
    test_embeddings, test_labels, preds = [], [], []
    found, start_index = 0, 0
    clf = knn_classifier(train_embeddings, train_labels, n_neighbors=5)
    while found < num_errors and start_index < len(data.test):
        chunk = data.test.subset(range(start_index, min(start_index + 64, len(data.test))))
        x, y = embed(model, chunk)
        p = knn_predict(clf, x)
        test_embeddings.append(x)
        test_labels.append(y)
        preds.append(p)
        found += int((p != y).sum())
        start_index += len(chunk)
    x, y, p = torch.cat(test_embeddings), torch.cat(test_labels), torch.cat(preds)
    last = int((p != y).nonzero().flatten()[num_errors - 1]) + 1 if found >= num_errors else len(y)
    x, y, p = x[:last], y[:last], p[:last]

    # (a) labkit, part 2: the vectorised search (lab 03's Question 5, as its model answer writes
    # it: one distance matrix, masked by class), then the gallery's table
    def vectorised_search():
        wrong = torch.nonzero(p != y).flatten()
        distance = torch.cdist(x[wrong], train_embeddings)
        other = lambda classes: train_labels[None, :] != classes[:, None]  # noqa: E731
        nearest_true = distance.masked_fill(other(y[wrong]), float("inf")).argmin(dim=1)
        nearest_pred = distance.masked_fill(other(p[wrong]), float("inf")).argmin(dim=1)
        return error_table(y, p, x, train_embeddings, train_labels,
                           nearest_true=nearest_true, nearest_pred=nearest_pred)  # fmt: skip

    search_s, table = best_time(vectorised_search, 3)

    # (b) the handout's way
    start = time.perf_counter()
    rows = handout_gallery(model, train_set, x.numpy(), y.numpy(), p.numpy())
    handout_s = time.perf_counter() - start

    expected = table[["nearest_true", "nearest_true_dist", "nearest_pred", "nearest_pred_dist"]]
    handout = np.array(rows, dtype=np.float64).reshape(-1, 4)
    assert len(handout) == len(table)
    np.testing.assert_allclose(handout[:, [1, 3]], expected.iloc[:, [1, 3]], rtol=1e-4)
    same = (handout[:, [0, 2]].astype(int) == expected.iloc[:, [0, 2]].to_numpy()).mean()
    labkit_s = embed_s + search_s
    return {
        "errors": len(table),
        "train_images": len(train_set),
        "image_size": profile.image_size,
        "threads": torch.get_num_threads(),
        "labkit_repeats": repeats,
        "labkit_embed_s": embed_s,
        "labkit_search_s": search_s,
        "labkit_s": labkit_s,
        "handout_s": handout_s,
        "speedup": handout_s / labkit_s,
        "same_images": float(same),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print both times and the ratio; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", type=int, default=20, help="misclassified test images")
    parser.add_argument("--root", type=Path, help="data folder (default: a temporary one)")
    parser.add_argument(
        "--train-per-class", type=int, help="cap on training images per class (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of labkit's pass (best)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to PATH")
    args = parser.parse_args(argv)
    if args.errors < 1 or args.repeats < 1:
        parser.error("--errors and --repeats must be at least 1")
    if args.root is None:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(tmp), args.errors, args.train_per_class, args.repeats)
    else:
        result = run(args.root, args.errors, args.train_per_class, args.repeats)
    print(
        f"{result['errors']} errors, {result['train_images']} training images at "
        f"{result['image_size']} px, resnet18_embedding on the CPU, {result['threads']} threads "
        f"(labkit: best of {result['labkit_repeats']}, handout: one run)"
    )
    print(
        f"labkit (embed once + cdist) : {result['labkit_s']:8.2f} s "
        f"(embed {result['labkit_embed_s']:.2f} s, search {result['labkit_search_s'] * 1e3:.1f} ms)"
    )
    print(f"handout (re-embed per query): {result['handout_s']:8.2f} s")
    print(f"speedup                     : {result['speedup']:8.1f}x (target >= 20x)")
    print(f"same nearest images         : {result['same_images']:.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
