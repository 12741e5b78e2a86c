"""Are the synthetic birds fine-grained? A small CNN from scratch against colour histograms.

Usage: python results/synthbirds_baselines.py --profile cpu [--epochs N] [--out FILE.json]

Writes (once) the profile's synthetic birds under the data folder, then measures
- a logistic regression on each whole image's colour histogram (8 bins per channel, 512
  values; scikit-learn, its regularisation chosen by 5-fold cross-validation on the training
  split), which sees colour and nothing of shape or position;
- a small CNN (five conv-BN-ReLU stages, global average pooling) trained from scratch through
  `labkit.training.loop.fit` on random crops with flips, scored on the centre crops of the test split.
Prints a table and, with --out, writes the numbers as JSON for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader

from labkit.config import seed_everything
from labkit.data import load_birds
from labkit.labs.birds import SYNTHETIC_BIRDS
from labkit.training.callbacks import ProgressBar
from labkit.training.loop import evaluate, fit
from labkit.training.recipe import Recipe

INPUT = {"smoke": (64, 56), "cpu": (112, 96), "full": (128, 112)}  # (resize, crop) of the CNN
EPOCHS = {"smoke": 2, "cpu": 60, "full": 40}


def colour_histograms(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(N, 512) colour histograms (8 bins per channel, fractions of the image) and labels."""
    index, rows = dataset.index, dataset.rows
    features = []
    for row in rows:
        with Image.open(index.image_path(row)) as image:
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3) // 32
        codes = pixels[:, 0].astype(np.int64) * 64 + pixels[:, 1] * 8 + pixels[:, 2]
        features.append(np.bincount(codes, minlength=512) / len(codes))
    return np.stack(features), index.labels[rows]


def small_cnn(num_classes: int, widths=(32, 64, 128, 256)) -> nn.Sequential:
    """A stride-2 stem, then one conv-BN-ReLU at the first width and two at each next (the
    first of them halving the size), global average pooling and a linear classifier."""

    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]  # fmt: skip

    layers = block(3, widths[0], 2) + block(widths[0], widths[0], 1)
    for cin, cout in zip(widths, widths[1:], strict=False):
        layers += block(cin, cout, 2) + block(cout, cout, 1)
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(widths[-1], num_classes),
    ]
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(SYNTHETIC_BIRDS), default="cpu")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    spec = SYNTHETIC_BIRDS[args.profile]
    resize, crop = INPUT[args.profile]
    epochs = args.epochs or EPOCHS[args.profile]
    seed_everything(0)

    started = time.perf_counter()
    data = load_birds(resize=resize, crop=crop, synthetic=spec)
    written = time.perf_counter() - started

    started = time.perf_counter()
    x_train, y_train = colour_histograms(data.train)
    x_test, y_test = colour_histograms(data.test)
    # the regularisation chosen by 5-fold cross-validation on the training split
    histogram_model = make_pipeline(
        StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1, 10], cv=5, max_iter=3000)
    )
    histogram_model.fit(x_train, y_train)
    histogram_acc = float((histogram_model.predict(x_test) == y_test).mean())
    histogram_train = float((histogram_model.predict(x_train) == y_train).mean())
    histogram_s = time.perf_counter() - started

    model = small_cnn(data.num_classes)
    train_loader = DataLoader(data.train, batch_size=32, shuffle=True,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    test_loader = DataLoader(data.test, batch_size=64)
    recipe = Recipe(num_epochs=epochs, lr=0.05, batch_size=32, weight_decay=5e-4,
                    schedule="cosine", label_smoothing=0.1)  # fmt: skip
    # Nesterov momentum, which the recipe does not say: the optimiser built here
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    started = time.perf_counter()
    history = fit(
        model, (train_loader, test_loader), recipe, optimizer=optimizer, scheduler=scheduler,
        callbacks=[ProgressBar("small CNN")],
    )  # fmt: skip
    cnn_s = time.perf_counter() - started
    test = evaluate(model, test_loader)
    results = {
        "profile": args.profile,
        "set": spec.version,
        "chance": 1 / data.num_classes,
        "write_or_reuse_s": round(written, 1),
        "histogram_logreg_test_acc": histogram_acc,
        "histogram_logreg_train_acc": histogram_train,
        "histogram_s": round(histogram_s, 1),
        "histogram_C": float(histogram_model[-1].C_[0]),
        "cnn_input": f"resize {resize}, crop {crop}",
        "cnn_epochs": epochs,
        "cnn_test_acc": float(test["top1"]),
        "cnn_best_epoch_test_acc": float(history["val_acc"].max()),
        "cnn_train_s": round(cnn_s, 1),
        "cnn_s_per_epoch": round(cnn_s / epochs, 2),
    }
    for key, value in results.items():
        print(f"{key:>28}: {value}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
