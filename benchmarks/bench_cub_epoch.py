"""One epoch over a CUB-layout folder at two data-set sizes: peak memory stays flat with labkit's
lazy reader and grows with the handout's decode-everything-first loader.

(a) labkit: `CubDataset` opens each image when it is asked for (nothing cached), with
    `--workers` DataLoader workers (default 0: one process, so that its peak is the whole story);
(b) the handout's way (seed 000's CUB200): every image decoded and kept in a list before the
    epoch (what its pickle then stores), resized and cropped per item.
Both read synthetic birds in the CUB layout (`--small` and `--large` classes of 30 images at
`--size` px), at resize 256 / crop 224. Each measurement runs in a fresh process; peak memory
is the process's maximum resident set (its workers' too) above what it held after imports.

Usage: python benchmarks/bench_cub_epoch.py [--small 10] [--large 40] [--size 320] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESIZE, CROP, BATCH = 256, 224, 32


def _max_rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def measure(root: str, method: str, workers: int) -> dict:
    """Run in a fresh process: one epoch with `method`; seconds, images and peak MiB."""
    import numpy as np
    import psutil
    import torch
    from torch.utils.data import DataLoader

    from labkit.data.birds import BirdTransform, CubDataset
    from labkit.data.cub import read_cub_index
    from labkit.data.images import open_rgb
    from labkit.data.transforms import normalize_imagenet

    index = read_cub_index(root)
    baseline = psutil.Process().memory_info().rss / 2**20
    start = time.perf_counter()
    if method == "labkit":
        dataset = CubDataset(index, "train", BirdTransform(RESIZE, CROP, train=True))
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers)
    else:  # decode everything first, keep it, then transform per item
        images = [open_rgb(index.image_path(r))[0] for r in index.split("train")]
        labels = index.labels[index.split("train")]

        def item(i: int):
            image = images[i]
            scale = RESIZE / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
            x0 = np.random.randint(0, image.width - CROP + 1)
            y0 = np.random.randint(0, image.height - CROP + 1)
            return normalize_imagenet(image.crop((x0, y0, x0 + CROP, y0 + CROP))), int(labels[i])

        def collate(ids: list[int]):
            return torch.utils.data.default_collate([item(i) for i in ids])

        loader = DataLoader(range(len(images)), batch_size=BATCH, shuffle=True, collate_fn=collate)
    count = sum(len(batch[0]) for batch in loader)
    seconds = time.perf_counter() - start
    peak = max(_max_rss_mib(resource.RUSAGE_SELF), _max_rss_mib(resource.RUSAGE_CHILDREN))
    return {"method": method, "images": count, "seconds": round(seconds, 2),
            "peak_above_baseline_mib": round(peak - baseline, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10, help="classes of the small set")
    parser.add_argument("--large", type=int, default=40, help="classes of the large set")
    parser.add_argument("--size", type=int, default=320, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of (a)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--measure", nargs=2, metavar=("ROOT", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.workers)))
        return

    from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for classes in (args.small, args.large):
            spec = SynthBirdsSpec(classes, 30, 1, args.size)
            root = write_synthetic_birds(Path(scratch) / f"set{classes}", spec)
            for method in ("labkit", "decode-all-first"):
                run = subprocess.run(
                    [sys.executable, __file__, "--measure", str(root), method,
                     "--workers", str(args.workers)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                row = {"classes": classes, **json.loads(run.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(row, flush=True)
    by = {(r["method"], r["classes"]): r["peak_above_baseline_mib"] for r in rows}
    for method in ("labkit", "decode-all-first"):
        small, large = by[(method, args.small)], by[(method, args.large)]
        print(f"{method}: peak {small} MiB -> {large} MiB for {args.large / args.small:.0f}x the "
              f"images (ratio {large / max(small, 1e-9):.2f})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
