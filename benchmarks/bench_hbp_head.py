"""A training step of the HBP head: labkit's `HBPHead` against the handout's formulation.

The handout (seed 000, after the HBP authors' code) projects each relu5_x map again for every
interaction it enters (six 1x1 convolutions instead of three) and materialises each d-channel
product before summing it. labkit's head projects each map once per chunk of channels and keeps
only the C-channel maps and the weights for backward (`labkit.bilinear.pooling`).

Same inputs (three relu-like maps N x C x H x W), same weights, same labels, one run:
- outputs equal (max absolute difference of the logits);
- activations saved for backward, parameters excluded
  (`labkit.training.memory.step_memory`, which counts them with
  `torch.autograd.graph.saved_tensors_hooks`);
- peak memory of a process that runs only the step, above its memory before the step;
- median time of a training step (forward, backward) over `--repeats`.

Usage: python benchmarks/bench_hbp_head.py [--batch 2] [--size 28] [--d 8192] [--json PATH]
(defaults: the full profile's 448 x 448 input, whose relu5 maps are 28 x 28 x 512)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from labkit.bilinear.heads import HBPHead
from labkit.training.memory import step_memory

CHANNELS = 512  # VGG-16's relu5_x
CLASSES = 200


class HandoutHBP(nn.Module):
    """The handout's head: each interaction projects both its maps again and keeps the product."""

    def __init__(self, head: HBPHead) -> None:
        super().__init__()
        self.projections, self.fc = head.projections, head.fc

    def forward(self, maps) -> torch.Tensor:  # noqa: D102
        p = self.projections
        inter1 = p[0](maps[0]) * p[1](maps[1])
        inter2 = p[0](maps[0]) * p[2](maps[2])
        inter3 = p[1](maps[1]) * p[2](maps[2])
        outs = []
        for inter in (inter1, inter2, inter3):
            z = inter.flatten(2).sum(dim=2)
            z = torch.sign(z) * torch.sqrt(z.abs() + 1e-10)
            outs.append(F.normalize(z, dim=1))
        return self.fc(torch.cat(outs, dim=1))


class Step(nn.Module):
    """Wraps a head so that step_memory sees the three maps as one input."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, maps) -> torch.Tensor:  # noqa: D102
        return self.head(maps)


def setup(batch: int, size: int, d: int):
    torch.manual_seed(0)
    head = HBPHead((CHANNELS,) * 3, d, CLASSES)
    maps = tuple(torch.randn(batch, CHANNELS, size, size).relu() for _ in range(3))
    labels = torch.randint(0, CLASSES, (batch,))
    return head, maps, labels


def models(head: HBPHead) -> dict[str, nn.Module]:
    return {"labkit": Step(head), "handout": Step(HandoutHBP(head))}


def train_step(model: nn.Module, maps, labels) -> None:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(maps), labels).backward()


def peak_child(which: str, batch: int, size: int, d: int) -> float:
    """Run in a fresh process: MiB of peak resident memory above the level before the step."""
    import psutil

    head, maps, labels = setup(batch, size, d)
    model = models(head)[which]
    before = psutil.Process().memory_info().rss / 2**20
    train_step(model, maps, labels)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=28, help="H = W of the relu5 maps")
    parser.add_argument("--d", type=int, default=8192, help="projection channels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--peak", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(peak_child(args.peak, args.batch, args.size, args.d))
        return

    head, maps, labels = setup(args.batch, args.size, args.d)
    candidates = models(head)
    with torch.no_grad():
        difference = (candidates["labkit"](maps) - candidates["handout"](maps)).abs().max().item()
    rows = {}
    for name, model in candidates.items():
        memory = step_memory(model, maps, labels)
        train_step(model, maps, labels)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            train_step(model, maps, labels)
            times.append(time.perf_counter() - start)
        run = subprocess.run(
            [sys.executable, __file__, "--peak", name, "--batch", str(args.batch),
             "--size", str(args.size), "--d", str(args.d)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows[name] = {
            "saved_activations_mib": round(memory["activations"] / 2**20, 1),
            "peak_step_mib": round(float(run.stdout.strip().splitlines()[-1]), 1),
            "step_s": round(statistics.median(times), 3),
        }
    ours, theirs = rows["labkit"], rows["handout"]
    result = {
        "batch": args.batch, "maps": f"3 x {CHANNELS} x {args.size} x {args.size}", "d": args.d,
        "threads": torch.get_num_threads(), "max_abs_logit_difference": difference, **{
            f"{k}_{name}": v for name, row in rows.items() for k, v in row.items()},
        "saved_ratio": round(ours["saved_activations_mib"] / theirs["saved_activations_mib"], 4),
        "peak_ratio": round(ours["peak_step_mib"] / theirs["peak_step_mib"], 3),
        "time_ratio": round(ours["step_s"] / theirs["step_s"], 3),
    }  # fmt: skip
    for key, value in result.items():
        print(f"{key:>32}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
