"""Scoring OPAM's patch proposals with a filter net: labkit's batched scores vs one patch at a time.

(a) labkit: `patch_scores`, every patch of every image cropped and resized by `roi_align` and
    passed through the model `--batch-size` at a time, across images; (b) a naive port of the
    handout's loop: for each image, for each patch, crop with slicing, resize
    (`resized_crop`, antialiased), one forward pass. Same model (a small VGG with a GAP head,
    eval mode), same synthetic birds, same boxes (multi-scale windows, so OpenCV is not
    needed), in one process; the scores of (a) and (b) differ only by the resampling.
Also times OpenCV's selective search per image (fast and quality modes) on synthetic birds of
two sizes, when OpenCV's contrib module is installed.

Usage: python benchmarks/bench_patch_filter.py [--images 20] [--image-size 112] [--patches 100]
       [--patch-size 64] [--batch-size 256] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from timing import best_time
from torch import nn

from labkit.attention import (
    multiscale_boxes,
    patch_scores,
    selective_search_available,
    selective_search_boxes,
)
from labkit.bilinear.heads import GAPNet
from labkit.data.synthbirds import draw_bird, species_list
from labkit.data.transforms import normalize_imagenet
from labkit.models.backbones import small_vgg_backbone

NUM_CLASSES = 10


def birds(count: int, size: int) -> tuple[list, torch.Tensor]:
    """`count` synthetic birds of `NUM_CLASSES` species: PIL images and their labels."""
    species = species_list("birds", NUM_CLASSES)
    rng = np.random.default_rng(0)
    labels = torch.arange(count) % NUM_CLASSES
    return [draw_bird(species[int(c)], rng, size)[0] for c in labels], labels


def naive_scores(model: nn.Module, images, boxes, labels, size: int) -> list[torch.Tensor]:
    """The handout's way: one crop, one resize and one forward pass per patch."""
    scores = []
    with torch.no_grad():
        for image, image_boxes, label in zip(images, boxes, labels, strict=True):
            row = []
            for x1, y1, x2, y2 in image_boxes.long().tolist():
                crop = TF.resized_crop(image, y1, x1, y2 - y1, x2 - x1, [size, size])
                row.append(F.softmax(model(crop[None]), dim=1)[0, label])
            scores.append(torch.stack(row))
    return scores


def run(
    num_images: int,
    image_size: int,
    num_patches: int,
    patch_size: int,
    batch_size: int,
    repeats: int,
) -> dict[str, float | int]:
    """Time both ways of scoring the same patches (labkit: best of `repeats`; naive: one run)."""
    torch.manual_seed(0)
    model = GAPNet(small_vgg_backbone(), NUM_CLASSES).eval()
    pil_images, labels = birds(num_images, image_size)
    images = torch.stack([normalize_imagenet(image) for image in pil_images])  # (N, 3, S, S)
    boxes = [multiscale_boxes(image_size, image_size, max_patches=num_patches)] * num_images

    def batched() -> list[torch.Tensor]:
        return patch_scores(model, images, boxes, labels, size=patch_size, batch_size=batch_size)

    batched()  # warm-up
    labkit_s, fast = best_time(batched, repeats)
    naive_s, slow = best_time(lambda: naive_scores(model, images, boxes, labels, patch_size), 1)
    difference = (torch.cat(fast) - torch.cat(slow)).abs()
    return {
        "num_images": num_images,
        "image_size": image_size,
        "num_patches": num_patches * num_images,
        "patch_size": patch_size,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "labkit_s": labkit_s,
        "naive_s": naive_s,
        "speedup": naive_s / labkit_s,
        "max_score_difference": float(difference.max()),
        "mean_score_difference": float(difference.mean()),
    }


def selective_search_times(sizes=(112, 256), count: int = 5) -> dict[str, dict[str, float]]:
    """Mean seconds per image and mean boxes per image of selective search, by size and mode."""
    if not selective_search_available():
        return {}
    results = {}
    for size in sizes:
        pil_images, _ = birds(count, size)
        selective_search_boxes(pil_images[0], max_patches=100_000)  # warm-up
        for mode in ("fast", "quality"):
            times, counts = [], []
            for image in pil_images:
                start = time.perf_counter()
                found = selective_search_boxes(image, max_patches=100_000, mode=mode)
                times.append(time.perf_counter() - start)
                counts.append(len(found))
            results[f"{size}px {mode}"] = {
                "s_per_image": statistics.mean(times),
                "boxes_per_image": statistics.mean(counts),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print both times and the ratio; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--patches", type=int, default=100, help="patches per image")
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="runs of labkit's scores")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to PATH")
    args = parser.parse_args(argv)
    result: dict[str, Any] = run(
        args.images, args.image_size, args.patches, args.patch_size, args.batch_size, args.repeats
    )
    print(
        f"{result['num_patches']} patches of {result['num_images']} images of "
        f"{result['image_size']} px, resized to {result['patch_size']} px, small VGG + GAP, "
        f"CPU, {result['torch_threads']} torch thread(s), one process"
    )
    print(f"labkit patch_scores (batches of {result['batch_size']}): {result['labkit_s']:8.2f} s")
    print(f"naive (one forward pass per patch)     : {result['naive_s']:8.2f} s")
    print(f"speedup                                : {result['speedup']:8.1f}x")
    print(f"max |score difference| (resampling)    : {result['max_score_difference']:8.1e}")
    result["selective_search"] = selective_search_times()
    for name, numbers in result["selective_search"].items():
        print(
            f"selective search {name:13s}: {numbers['s_per_image'] * 1e3:7.1f} ms/image, "
            f"{numbers['boxes_per_image']:6.1f} boxes/image"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
