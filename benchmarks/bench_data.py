"""One epoch of lab 02's training data: decoded-once tensors vs decoding the PNGs every epoch.

(a) labkit: the built-in digits decoded once into a uint8 tensor (TensorImageDataset), random
    crop with padding on tensors; (b) the handout's way: torchvision ImageFolder over the same
    PNGs with the same augmentation, decoding every file in every epoch. Both at the full
    profile's sizes (all 1000 training images, 32 px, batch 64), in one process.

Usage: python benchmarks/bench_data.py [--root DIR] [--epochs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from labkit.config import seed_everything
from labkit.data import MEAN, STD, digits_augmentation, load_digits_data
from labkit.labs.densenet_resnext import settings


def time_epoch(loader: DataLoader) -> tuple[float, int]:
    """Seconds to iterate `loader` once, and the number of images it gave."""
    start = time.perf_counter()
    count = 0
    for images, _ in loader:
        count += len(images)
    return time.perf_counter() - start, count


def handout_loader(train_dir: Path, image_size: int, batch_size: int) -> DataLoader:
    """The handout's pipeline: ImageFolder decoding each PNG, then crop, tensor, normalise."""
    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(image_size, antialias=True),
            digits_augmentation(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    dataset = ImageFolder(train_dir, transform=transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)


def run(root: Path, epochs: int) -> dict[str, float | int | str]:
    """Time both pipelines for `epochs` epochs each (best epoch counts); return the numbers."""
    profile = settings("full")
    seed_everything(0)
    start = time.perf_counter()
    data = load_digits_data(image_size=profile.image_size, root=root)
    decode_once = time.perf_counter() - start  # includes writing the PNGs on a first run
    start = time.perf_counter()
    data = load_digits_data(image_size=profile.image_size, root=root, verbose=False)
    decode_once = min(decode_once, time.perf_counter() - start)
    tensor_loader = DataLoader(data.train, batch_size=profile.batch_size, shuffle=True)
    folder_loader = handout_loader(data.root / "train", profile.image_size, profile.batch_size)
    tensor_times, folder_times = [], []
    for _ in range(epochs):  # interleaved, so drifting machine load hits both alike
        seconds, n_tensor = time_epoch(tensor_loader)
        tensor_times.append(seconds)
        seconds, n_folder = time_epoch(folder_loader)
        folder_times.append(seconds)
    assert n_tensor == n_folder == len(data.train)
    tensor_s, folder_s = min(tensor_times), min(folder_times)
    return {
        "images": n_tensor,
        "image_size": profile.image_size,
        "batch_size": profile.batch_size,
        "epochs_timed": epochs,
        "decode_once_s": round(decode_once, 4),
        "tensor_epoch_s": round(tensor_s, 4),
        "imagefolder_epoch_s": round(folder_s, 4),
        "speedup": round(folder_s / tensor_s, 2),
        "torch_threads": torch.get_num_threads(),
        "source": data.source,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print (and optionally save) the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="data folder (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per pipeline; best counts")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        numbers = run(args.root if args.root is not None else Path(tmp), args.epochs)
    print(
        f"one epoch, {numbers['images']} images at {numbers['image_size']} px, batch "
        f"{numbers['batch_size']} (best of {args.epochs}):\n"
        f"  (a) decoded-once tensors      {numbers['tensor_epoch_s']:.3f} s"
        f"  (decoding once: {numbers['decode_once_s']:.3f} s)\n"
        f"  (b) ImageFolder + transforms  {numbers['imagefolder_epoch_s']:.3f} s\n"
        f"  ratio (b)/(a): {numbers['speedup']:.1f}x"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
