"""Dense against multi-crop evaluation as the paper compares them (Simonyan & Zisserman 2015,
sections 4.1 to 4.3): the test scales a network's training scale calls for, the images it is
scored on, where dense evaluation's windows sit, and one table of five ways to score the same
images (centre crop, dense at one scale, dense and multi-crop at all scales with flips, both).

Used in: 01_vgg_receptive_fields (through labkit.labs.vgg_receptive_fields).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2
from tqdm.auto import tqdm

from labkit.training.metrics import top_k_error
from labkit.vgg.dense_evaluation import dense_scores, fully_convolutional
from labkit.vgg.multi_crop import crops_per_image, multi_crop_scores
from labkit.vgg.receptive_field import receptive_field_table

__all__ = [
    "EvaluationSet",
    "compare_evaluations",
    "evaluation_scales",
    "evaluation_set",
    "trained_scale",
    "window_grid",
]


def evaluation_scales(scale_min: int, scale_max: int, crop: int) -> tuple[int, tuple[int, ...]]:
    """The paper's test scales for a network trained on crops of images whose short side S was
    `scale_min` (a fixed S: `scale_max` equal) or drawn from [scale_min, scale_max] (jittered).

    Returns `(single, scales)`: the single test scale Q (section 4.1: S, or the middle of the
    jitter's range) and the three of multi-scale evaluation (section 4.2: S - 32, S, S + 32 for a
    fixed S; S_min, the middle and S_max for a jittered one). A scale smaller than the crop is
    left out: no crop fits it, and dense evaluation needs a crop's worth of image.
    """
    if scale_min == scale_max:
        single, scales = scale_min, (scale_min - 32, scale_min, scale_min + 32)
    else:
        single = (scale_min + scale_max) // 2
        scales = (scale_min, single, scale_max)
    return single, tuple(q for q in scales if q >= crop)


def trained_scale(scale_min: int, scale_max: int) -> str:
    """How a network's training scale reads: 'S = 112' or 'S in [96, 128]'."""
    return f"S = {scale_min}" if scale_min == scale_max else f"S in [{scale_min}, {scale_max}]"


class EvaluationSet(NamedTuple):
    """A network and the images dense and multi-crop evaluation score it on, with the test
    scales its training scale calls for, as `evaluation_set` returns them."""

    name: str  # which network on which images, short (the table's index)
    model: nn.Module  # the network scored (a VGG)
    images: torch.Tensor  # (N, 3, side, side) normalised, side = the largest test scale
    labels: torch.Tensor  # (N,)
    class_names: tuple[str, ...]
    trained_at: str  # its training scale, e.g. "S = 112"
    single: int  # the single test scale Q
    scales: tuple[int, ...]  # the test scales of multi-scale evaluation
    line: str  # all of it, for people


def _spread(count: int, wanted: int | None) -> list[int]:
    """`wanted` positions spread evenly over range(count) (all of them for None)."""
    if wanted is None or wanted >= count:
        return list(range(count))
    return [int(i * count / wanted) for i in range(wanted)]


def evaluation_set(
    name: str,
    model: nn.Module,
    test: Dataset,
    class_names: Sequence[str],
    scale_range: tuple[int, int],
    crop: int,
    *,
    count: int | None = None,
    what: str = "",
) -> EvaluationSet:
    """`model` (trained at `scale_range`, on `crop`-pixel crops) and `count` images of `test`
    spread over it (all for None), each read at the largest of its test scales
    (`evaluation_scales`); `what` names network and images in the line."""
    single, scales = evaluation_scales(*scale_range, crop)
    items = [test[i] for i in _spread(len(test), count)]
    _, rule = evaluation_scales(*scale_range, 0)
    left_out = sorted(set(rule) - set(scales))
    line = (
        f"scored: {what}: {len(items)} images; trained at {trained_scale(*scale_range)}, so "
        f"tested at Q = {single} alone and at Q = {', '.join(map(str, rule))} together"
        + (f" ({', '.join(map(str, left_out))} left out: below the {crop}-pixel crop)"
           if left_out else "")
    )  # fmt: skip
    images = torch.stack([item[0] for item in items])
    labels = torch.tensor([int(item[1]) for item in items])
    return EvaluationSet(name, model, images, labels, tuple(class_names),
                         trained_scale(*scale_range), single, scales, line)  # fmt: skip


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    return v2.functional.resize(images, [size], antialias=True)


def window_grid(features: nn.Module, scales: Sequence[int], grid: int) -> pd.DataFrame:
    """Where dense evaluation's windows sit at each test scale Q (one row per scale).

    Columns: the last feature map's side, Q / jump (its side before the floors), the windows
    per side (grid x grid each), and how many pixels the centre of the windows' grid lies above
    and left of the image's centre (0 when Q is a multiple of the jump: the floors drop
    nothing).
    """
    rows = {}
    for q in scales:
        last = receptive_field_table(features, q).iloc[-1]
        side, jump, first = int(last["output size"]), int(last["jump"]), last["first centre"]
        windows = side - grid + 1
        centre = first + ((grid - 1) / 2 + (windows - 1) / 2) * jump
        rows[q] = {"last map": side, "Q / jump": q / jump, "windows per side": windows,
                   "grid's centre off by (px)": q / 2 - centre}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("test scale Q")


def compare_evaluations(
    scored: EvaluationSet,
    *,
    crop: int,
    grid: int,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> pd.DataFrame:
    """Top-1 and top-5 error and seconds of five ways to score the same images:

    - one centre crop (`crop` pixels) at the single test scale;
    - dense evaluation at the single test scale (the fully convolutional net on the whole
      image, its class-score map averaged);
    - dense at all test scales, with flips (posteriors averaged);
    - multi-crop: a `grid` x `grid` grid of crops at all test scales, with flips;
    - dense and multi-crop together (their posteriors averaged), as the paper combines them.

    The top-5 error is NaN for five classes or fewer (it is 0 by definition). `device`: where
    the images go (default: the model's).
    """
    model = scored.model
    device = device if device is not None else next(model.parameters()).device
    images, labels = scored.images.to(device), scored.labels.to(device)
    fc = fully_convolutional(model).to(device)
    single, scales = scored.single, scored.scales
    rows: dict[str, tuple[str, int, float]] = {}
    posteriors: dict[str, torch.Tensor] = {}

    def dense(qs: tuple[int, ...], flip: bool) -> torch.Tensor:
        per_scale = []  # (N, num_classes) posteriors at each scale, averaged below
        for q in qs:
            chunks = [dense_scores(fc, _resized(images[i : i + batch_size], q), flip=flip)
                      for i in range(0, len(images), batch_size)]  # fmt: skip
            per_scale.append(torch.cat(chunks))
        return torch.stack(per_scale).mean(dim=0)

    def crops(qs: tuple[int, ...], grid: int, flip: bool) -> torch.Tensor:
        return multi_crop_scores(model, images, scales=qs, crop=crop, grid=grid, flip=flip,
                                 batch_size=batch_size)  # fmt: skip

    every = ", ".join(map(str, scales))
    ways = {
        "centre crop, single scale": (str(single), lambda: crops((single,), 1, False), 1),
        "dense, single scale": (str(single), lambda: dense((single,), False), 1),
        "dense, all scales + flips": (every, lambda: dense(scales, True), 2 * len(scales)),
        "multi-crop, all scales + flips": (
            every,
            lambda: crops(scales, grid, True),
            crops_per_image(grid, scales, True),
        ),
    }
    times: dict[str, float] = {}
    for name, (qs, score, passes) in tqdm(ways.items(), desc="evaluations", disable=not progress):
        begin = time.perf_counter()
        posteriors[name] = score()
        times[name] = time.perf_counter() - begin
        rows[name] = (qs, passes, times[name])
    both = ("dense, all scales + flips", "multi-crop, all scales + flips")
    posteriors["dense + multi-crop"] = (posteriors[both[0]] + posteriors[both[1]]) / 2
    rows["dense + multi-crop"] = (every, rows[both[0]][1] + rows[both[1]][1],
                                  times[both[0]] + times[both[1]])  # fmt: skip
    top5 = len(scored.class_names) > 5
    return pd.DataFrame(
        {
            "test scales Q": [rows[n][0] for n in rows],
            "top-1 error": [top_k_error(posteriors[n], labels, 1) for n in rows],
            "top-5 error": [
                top_k_error(posteriors[n], labels, 5) if top5 else float("nan") for n in rows
            ],
            "forward passes per image": [rows[n][1] for n in rows],
            "seconds": [rows[n][2] for n in rows],
        },
        index=pd.Index(list(rows), name="evaluation"),
    )
