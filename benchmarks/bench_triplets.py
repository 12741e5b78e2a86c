"""Drawing lab 03's 8,000 random triplets: labkit's vectorised draw vs the handout's sampler.

(a) labkit: `random_triplets(labels, 8000)`, index arrays built once per call, no loop per
    triplet; (b) the handout's `TripletFaceDataset.generate_triplets`, written plainly: a
    Python loop per triplet with rejection sampling and two `df.loc[df['class'] == c]` filters
    of the `id,name,class` frame per triplet. Labels only (1,000 images, 10 classes of 100,
    like the lab's train.csv), so no image decoding is timed; both in one process.

Usage: python benchmarks/bench_triplets.py [--num-triplets 8000] [--repeats 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd
from timing import best_time

from labkit.triplets import random_triplets


def lab_frame(num_classes: int = 10, per_class: int = 100) -> pd.DataFrame:
    """The handout's train.csv: one row per image with columns id, name (class name), class."""
    labels = np.repeat(np.arange(num_classes), per_class)
    return pd.DataFrame({"id": np.arange(len(labels)), "name": labels.astype(str), "class": labels})


def handout_triplets(df: pd.DataFrame, num_triplets: int) -> list[list]:
    """The handout's generate_triplets: a loop per triplet, filtering the frame each time."""
    pic_classes: dict = {}
    for idx, label in enumerate(df["class"]):
        pic_classes.setdefault(label, []).append(df.iloc[idx, 0])
    classes = df["class"].unique()
    triplets = []
    for _ in range(num_triplets):
        pos_class = np.random.choice(classes)
        neg_class = np.random.choice(classes)
        while len(pic_classes[pos_class]) < 2:
            pos_class = np.random.choice(classes)
        while pos_class == neg_class:
            neg_class = np.random.choice(classes)
        pos_name = df.loc[df["class"] == pos_class, "name"].values[0]
        neg_name = df.loc[df["class"] == neg_class, "name"].values[0]
        if len(pic_classes[pos_class]) == 2:
            ianc, ipos = np.random.choice(2, size=2, replace=False)
        else:
            ianc = np.random.randint(0, len(pic_classes[pos_class]))
            ipos = np.random.randint(0, len(pic_classes[pos_class]))
            while ianc == ipos:
                ipos = np.random.randint(0, len(pic_classes[pos_class]))
        ineg = np.random.randint(0, len(pic_classes[neg_class]))
        triplets.append(
            [
                pic_classes[pos_class][ianc],
                pic_classes[pos_class][ipos],
                pic_classes[neg_class][ineg],
                pos_class,
                neg_class,
                pos_name,
                neg_name,
            ]
        )
    return triplets


def run(num_triplets: int, repeats: int) -> dict[str, float | int]:
    """Time both samplers on the lab's labels (labkit: best of 20; handout: of `repeats`)."""
    df = lab_frame()
    labels = df["class"].to_numpy()
    random_triplets(labels, num_triplets, seed=0)  # warm-up
    labkit_s, (a, p, n) = best_time(lambda: random_triplets(labels, num_triplets, seed=0), 20)
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all() and (a != p).all()
    np.random.seed(0)
    handout_s, triplets = best_time(lambda: handout_triplets(df, num_triplets), repeats)
    assert len(triplets) == num_triplets
    return {
        "num_triplets": num_triplets,
        "num_images": len(labels),
        "num_classes": int(df["class"].nunique()),
        "labkit_s": labkit_s,
        "handout_s": handout_s,
        "speedup": handout_s / labkit_s,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print one line per sampler and the ratio; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-triplets", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of the handout's sampler")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to PATH")
    args = parser.parse_args(argv)
    result = run(args.num_triplets, args.repeats)
    print(
        f"{result['num_triplets']} triplets from {result['num_images']} images, "
        f"{result['num_classes']} classes (best of runs, one process)"
    )
    print(f"labkit random_triplets : {result['labkit_s'] * 1e3:9.2f} ms")
    print(f"handout (pandas loop)  : {result['handout_s'] * 1e3:9.2f} ms")
    print(f"speedup                : {result['speedup']:9.0f}x (target >= 100x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
