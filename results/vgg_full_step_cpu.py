"""Seconds per training step of lab 01's `full` profile (VGG-19 at 224 x 224, the handout's
network) on this machine, 4 images per step: what decides whether the `full` profile's
pretraining on the source species and its fine-tuning fit a background run on a CPU.

Prints the step time and, from the profile's settings, the image-steps and hours of its
pretraining (source species, without ImageNet weights) and of its fine-tuning.

Run: `python results/vgg_full_step_cpu.py` (RESULTS.md, "Lab 01").
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from labkit.labs import vgg_receptive_fields as lab01
from labkit.training.recipe import Recipe


def main() -> None:
    settings = lab01.settings("full")
    torch.manual_seed(0)
    model = lab01.build_vgg(settings, settings.source.num_classes)
    images = torch.randn(4, 3, settings.crop, settings.crop)
    labels = torch.tensor([1, 2, 3, 4])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - start)
    per_image = statistics.median(seconds) / len(images)
    print(f"VGG {settings.config} at {settings.crop} px: {statistics.median(seconds):.2f} s per "
          f"step of {len(images)} images ({per_image:.2f} s an image)")  # fmt: skip
    source = settings.source.num_classes * settings.source.train_per_class * 0.9  # 10% validation
    photos = settings.photo_birds.num_classes * settings.photo_birds.train_per_class
    photos += settings.photo_birds.num_classes * settings.photo_birds.test_per_class
    photos *= 1 - settings.val_fraction
    stage: Recipe
    for name, stage, count in (("pretraining", settings.pretrain, source),
                               ("fine-tuning", settings.finetune, photos)):  # fmt: skip
        steps = stage.num_epochs * count
        print(f"{name}: {stage.num_epochs} epochs x {count:.0f} images = {steps:.0f} image-steps, "
              f"about {steps * per_image / 3600:.1f} hours")  # fmt: skip


if __name__ == "__main__":
    main()
