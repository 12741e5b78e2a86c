"""Seconds per training epoch of lab 02's two networks, measured side by side in one process.

Full-profile sizes (all training images of the digits at 32 px, batch 64, the handout's SGD),
one epoch each through `labkit.training.loop.fit` without evaluation, after one warm-up batch.

Usage: python benchmarks/bench_lab02_epoch.py [--root DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from labkit.config import seed_everything
from labkit.data import load_digits_data, make_loaders
from labkit.labs.densenet_resnext import Settings, settings
from labkit.models import count_parameters, densenet_bc, resnext29_16x8d
from labkit.training.loop import fit


def epoch_seconds(model: torch.nn.Module, loader, profile: Settings) -> float:
    """Seconds for one training epoch of `model` (after one warm-up step): the lab's recipe,
    its schedule left out (constant over one epoch)."""
    recipe = replace(profile.training, num_epochs=1, schedule="constant")
    images, labels = next(iter(loader))
    F.cross_entropy(model(images), labels).backward()  # warm-up: allocator, kernels
    model.zero_grad()
    start = time.perf_counter()
    fit(model, loader, recipe)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Time one epoch of DenseNet-52 and of ResNeXt-32 (16x8d); print seconds and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="data folder (default: labkit's data folder)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    profile = settings("full")
    data = load_digits_data(image_size=profile.image_size, root=args.root)
    train_loader, _ = make_loaders(data, batch_size=profile.training.batch_size)
    numbers: dict[str, object] = {
        "torch_threads": torch.get_num_threads(),
        "images": len(data.train),
    }
    for name, build in (
        ("densenet53", lambda: densenet_bc((2, 2, 4, 16))),
        ("resnext29_16x8d", resnext29_16x8d),
    ):
        seed_everything(0)
        model = build()
        numbers[f"{name}_params"] = count_parameters(model)
        numbers[f"{name}_epoch_s"] = round(epoch_seconds(model, train_loader, profile), 2)
        print(f"{name}: {numbers[f'{name}_epoch_s']} s per epoch", flush=True)
    ratio = numbers["resnext29_16x8d_epoch_s"] / numbers["densenet53_epoch_s"]
    numbers["ratio_resnext_over_densenet"] = round(ratio, 1)
    print(
        f"ResNeXt-32 / DenseNet-52 time per epoch: {ratio:.1f}x "
        f"({numbers['torch_threads']} threads)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
