"""The figure of the synthetic birds in RESULTS.md: one row per species, boxes and parts drawn.

Usage: python results/synthbirds_figure.py [--profile cpu] [--classes 8] [--out results/synthetic_birds.png]
Writes (once) the profile's synthetic birds under the data folder, then draws the first
`--classes` species' first six training images at their stored size (no crop, no flip).
"""

from __future__ import annotations

import argparse
import io

import matplotlib
from PIL import Image

matplotlib.use("Agg")

from labkit.config import data_root  # noqa: E402
from labkit.data import BirdTransform, CubDataset, read_cub_index, write_synthetic_birds  # noqa: E402
from labkit.data.synthbirds import synthetic_birds_folder  # noqa: E402
from labkit.labs.birds import SYNTHETIC_BIRDS  # noqa: E402
from labkit.plots import plot_bird_grid  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(SYNTHETIC_BIRDS), default="cpu")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--out", default="results/synthetic_birds.png")
    args = parser.parse_args()
    spec = SYNTHETIC_BIRDS[args.profile]
    folder = write_synthetic_birds(synthetic_birds_folder(data_root(), spec), spec)
    size = spec.image_size
    dataset = CubDataset(read_cub_index(folder), "train", BirdTransform(size, size, train=False),
                         with_geometry=True)  # fmt: skip
    fig = plot_bird_grid(dataset, classes=range(args.classes), per_class=6,
                         title=f"synthetic birds ({args.profile} profile, {size}px)")  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=64)
    # 256 colours: a third of the file, no visible change
    Image.open(buffer).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
