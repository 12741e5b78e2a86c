"""Lab 04 on a GPU: images per second and peak memory of both HBP stages, fp32 against bf16.

For each stage (1: backbone frozen and run without autograd; 2: everything trained) and each
precision (float32; bfloat16 autocast, the mixed precision `labkit.training.loop.fit` uses on a GPU
that supports it), this finds the largest batch whose training step fits (doubling, then
bisecting, from 1 up to `--max-batch`; out-of-memory errors caught), then times training steps
at that batch and at a common batch (`--batch`, the full profile's micro-batch of stage 1 by
default) and reports:
- images per second (median over `--steps` timed steps after `--warmup` steps);
- peak allocated GPU memory of a step (`torch.cuda.max_memory_allocated`).

Each step is `labkit.training.steps.backward_step` and an SGD step on the lab's own HBP model
(`labkit.labs.bcnn_hbp.build_model`, VGG-16 backbone, d = 8,192 at the full profile), in
channels-last layout as the lab's recipe has it on CUDA. Random images, random labels.

Usage (one GPU, a few minutes on a large one):
    python benchmarks/gpu_hbp_448.py [--json PATH]
On a CPU, for trying it at a small size:
`--device cpu --backbone small_vgg --width 8 --crop 32 --d 16 --max-batch 4`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from labkit.labs import bcnn_hbp
from labkit.labs.pretraining import BACKBONES
from labkit.training.steps import amp_settings, backward_step

CLASSES = 200  # CUB-200-2011


def _step(model: nn.Module, optimizer, images, labels, amp_dtype) -> None:
    backward_step(model, images, labels, loss_fn=nn.functional.cross_entropy, amp_dtype=amp_dtype)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(size: int, crop: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randn(size, 3, crop, crop, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    return images, torch.randint(0, CLASSES, (size,), device=device)


def measure(model, optimizer, batch: int, crop: int, amp_dtype, steps: int, warmup: int) -> dict:
    """Images per second and peak memory (MiB, None off CUDA) of training steps at `batch`."""
    device = next(model.parameters()).device
    images, labels = _batch(batch, crop, device)
    for _ in range(warmup):
        _step(model, optimizer, images, labels, amp_dtype)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        _step(model, optimizer, images, labels, amp_dtype)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"images per second": batch / statistics.median(seconds), "peak memory (MiB)": peak}


def fits(model, optimizer, batch: int, crop: int, amp_dtype) -> bool:
    """Whether one training step at `batch` runs without running out of GPU memory."""
    device = next(model.parameters()).device
    try:
        _step(model, optimizer, *_batch(batch, crop, device), amp_dtype)
        _sync(device)
        return True
    except torch.cuda.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        return False
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def largest_batch(model, optimizer, crop: int, amp_dtype, max_batch: int) -> int:
    """The largest batch in [1, max_batch] whose step fits (0 if not even 1 does)."""
    low, high = 0, 1  # low fits (0 trivially), high is the next candidate
    while high <= max_batch and fits(model, optimizer, high, crop, amp_dtype):
        low, high = high, high * 2
    high = min(high, max_batch + 1)  # first size known not to fit (or past the cap)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(model, optimizer, middle, crop, amp_dtype):
            low = middle
        else:
            high = middle
    return low


def run(args: argparse.Namespace) -> pd.DataFrame:
    """One row per stage and precision: the largest batch, and speed and memory at it and at
    the common batch."""
    device = torch.device(args.device)
    settings = bcnn_hbp.settings(
        "full", hbp_d=args.d, crop=args.crop, backbone=args.backbone, width=args.width
    )
    bf16, _ = amp_settings(device, True) if device.type == "cuda" else (torch.bfloat16, None)
    rows = []
    for stage, frozen in (("stage 1", True), ("stage 2", False)):
        for precision, amp_dtype in (("float32", None), ("bfloat16", bf16)):
            torch.manual_seed(0)
            backbone = bcnn_hbp.new_backbone(settings)
            model = bcnn_hbp.build_model("hbp", backbone, settings, CLASSES)
            model = model.to(device, memory_format=torch.channels_last)
            model.set_frozen(frozen)
            trained = model.head if frozen else model
            optimizer = torch.optim.SGD(trained.parameters(), lr=1e-3, momentum=0.9)
            biggest = largest_batch(model, optimizer, args.crop, amp_dtype, args.max_batch)
            row = {"stage": stage, "precision": precision, "largest batch": biggest}
            for label, batch in (("largest", biggest), (f"batch {args.batch}", args.batch)):
                if 0 < batch <= biggest:
                    got = measure(model, optimizer, batch, args.crop, amp_dtype, args.steps,
                                  args.warmup)  # fmt: skip
                    row.update({f"{k}, {label}": v for k, v in got.items()})
            rows.append(row)
            del model, optimizer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return pd.DataFrame(rows).set_index(["stage", "precision"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--crop", type=int, default=448)
    parser.add_argument("--d", type=int, default=8192)
    parser.add_argument("--backbone", choices=BACKBONES, default="vgg16")
    parser.add_argument("--width", type=int, default=32, help="small_vgg only: its first width")
    parser.add_argument("--batch", type=int, default=12, help="the common batch (default 12)")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA GPU here; for a trial on the CPU: --device cpu --backbone small_vgg")
    table = run(args)
    if args.device.startswith("cuda"):
        print(torch.cuda.get_device_name(torch.device(args.device)))
    print(table.to_string(float_format=lambda v: f"{v:.1f}"))
    if args.json:
        args.json.write_text(table.reset_index().to_json(orient="records", indent=1) + "\n")


if __name__ == "__main__":
    main()
