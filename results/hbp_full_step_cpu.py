"""Seconds per training step of lab 04's HBP in the `full` profile (VGG-16 at 448 x 448,
d = 8,192, 200 classes) on this machine, stage 1 (backbone frozen) and stage 2 (everything),
2 images per step: what decides whether the `full` profile fits a background run on a CPU.

Run: `python results/hbp_full_step_cpu.py` (RESULTS.md, "Lab 04 in the cpu profile").
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from labkit.labs import bcnn_hbp


def main() -> None:
    settings = bcnn_hbp.settings("full")
    torch.manual_seed(0)
    model = bcnn_hbp.build_model("hbp", bcnn_hbp.new_backbone(settings), settings, 200)
    images = torch.randn(2, 3, settings.crop, settings.crop)
    labels = torch.tensor([1, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for frozen, name in ((True, "stage 1"), (False, "stage 2")):
        model.set_frozen(frozen)
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds.append(time.perf_counter() - start)
        print(f"{name}: {statistics.median(seconds):.2f} s per step of 2 images")


if __name__ == "__main__":
    main()
