"""Res2Net (Gao et al., "Res2Net: A New Multi-scale Backbone Architecture", TPAMI 2019), laid
out as the official code (github Res2Net/Res2Net-PretrainedModels, `res2net.py`) so that its
ImageNet state dicts, and timm's `res2net50_*` / `res2net101_*` ones, load with `strict=True`.

The idea: inside one bottleneck the 3x3 conv is replaced by `scale` channel groups joined in a
chain, each group's 3x3 conv also reading the previous group's output, so one block mixes
receptive fields of 1, 3, 5, ... pixels (`split_receptive_fields`).

Used in: 05_opam (ClassNet: `features` and `fc` give the class activation maps).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from labkit.models._checks import check_num_blocks, check_positive_ints
from labkit.models.registry import named_builder, register_model

__all__ = [
    "Res2Net",
    "res2net",
    "res2net50_14w_8s",
    "res2net50_26w_4s",
    "res2net50_26w_6s",
    "res2net50_26w_8s",
    "res2net50_48w_2s",
    "res2net101_26w_4s",
    "split_receptive_fields",
]

_EXPANSION = 4  # a block's output has 4 x planes channels, as in ResNet's bottleneck
_STAGE_PLANES = (1, 2, 4, 8)  # stage planes as multiples of base_channels (64: 64 ... 512)
_STAGE_STRIDES = (1, 2, 2, 2)  # after the stem's /4: feature maps H/4, H/8, H/16, H/32


def _check_scale(scale: int) -> None:
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(
            f"scale (channel groups per block) must be an int >= 1, got {scale!r}; "
            "use 1 for a plain ResNet bottleneck, 4 for the paper's Res2Net-50"
        )


def split_receptive_fields(scale: int, *, stage: bool = False) -> list[int]:
    """Receptive field, in pixels of the block's input, that each output group y_1..y_s of one
    Res2Net bottleneck sees through its 3x3 convs (the 1x1 convs add nothing).

    The paper's chain y_1 = x_1, y_2 = K_2(x_2), y_i = K_i(x_i + y_{i-1}): y_i has passed through
    i - 1 stacked 3x3 convs, and each adds 2, so r_i = 1 + 2 (i - 1) = 2i - 1: 1, 3, 5, 7, ...
    Two exceptions, as in the official code:
    - scale == 1: the single group goes through one 3x3 conv (a ResNet bottleneck), so [3].
    - stage=True (the first block of a stage): the K_i read x_i alone and the identity group is
      3x3 average-pooled, so every group sees 3.

    Used in: 05_opam (the multi-scale table). Raises ValueError for a scale that is not an int
    >= 1.
    """
    _check_scale(scale)
    if scale == 1:
        return [3]
    if stage:
        return [3] * scale
    return [2 * i - 1 for i in range(1, scale + 1)]


class _Bottle2neck(nn.Module):
    """1x1 conv to `scale` groups of `width` channels, the hierarchical 3x3 convs, 1x1 conv,
    plus the shortcut; the official `Bottle2neck` (same attribute names, same forward).

    Group order is the official code's, which numbers the paper's groups differently: the code's
    groups 0 .. s-2 are the paper's x_2 .. x_s (each through its K), and the last group, passed
    on unchanged (or 3x3 average-pooled in a `stage` block), is the paper's x_1 = y_1. So the
    concatenation is [y_2, ..., y_s, y_1].
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        base_width: int = 26,
        scale: int = 4,
        stage: bool = False,
    ) -> None:
        super().__init__()
        width = math.floor(planes * base_width / 64)  # channels per group (the paper's w)
        self.width, self.scale, self.stage = width, scale, stage
        self.conv1 = nn.Conv2d(in_channels, width * scale, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        num_convs = max(1, scale - 1)  # scale 1: one 3x3 conv over everything (ResNet)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
            for _ in range(num_convs)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(num_convs))
        # A stage block's identity group must shrink as the convs' outputs do (stride 2); the
        # padding counts in the mean (count_include_pad), as the official weights were trained.
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if stage and scale > 1 else None
        self.conv3 = nn.Conv2d(width * scale, planes * _EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * _EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, s*w, H, W)
        splits = torch.split(out, self.width, dim=1)  # s groups (N, w, H, W)
        outputs: list[torch.Tensor] = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            # x_i alone in the first group and in a stage block, else x_i + the previous y
            inputs = splits[i] if not outputs or self.stage else outputs[-1] + splits[i]
            outputs.append(self.relu(bn(conv(inputs))))  # (N, w, H/stride, W/stride)
        if self.scale > 1:
            outputs.append(splits[-1] if self.pool is None else self.pool(splits[-1]))
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))  # (N, 4*planes, H/stride, W/stride)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(
    in_channels: int, planes: int, num_blocks: int, stride: int, base_width: int, scale: int
) -> nn.Sequential:
    """`num_blocks` blocks; the first is the official "stage" type and takes the stride.

    Official rule: the first block of every stage is a stage block. timm's (stride > 1 or a
    projection shortcut) agrees except for stem_channels == 4 * base_channels, stride 1.
    """
    out_channels = planes * _EXPANSION
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    blocks = [_Bottle2neck(in_channels, planes, stride, downsample, base_width, scale, True)]
    blocks += [
        _Bottle2neck(out_channels, planes, base_width=base_width, scale=scale)
        for _ in range(num_blocks - 1)
    ]
    return nn.Sequential(*blocks)


class Res2Net(nn.Module):
    """Res2Net: a ResNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages of Res2Net
    bottlenecks, global average pooling and one linear layer `fc`.

    Parameter names are the official ones (`conv1`, `bn1`, `layer1` .. `layer4`, `fc`; in a
    block `conv1`, `bn1`, `convs.i`, `bns.i`, `conv3`, `bn3`, `downsample.0/1`), so the official
    and timm state dicts load strictly into the matching builder. For class activation maps
    `features(x)` is `layer4`'s output (the last conv maps) and `fc` stays an nn.Linear, so
    `model(x) == model.fc(model.features(x).mean((2, 3)))` exactly (that is how `forward` is
    computed): pass `feature_layer=model.layer4, classifier=model.fc` to
    `labkit.attention.saliency_maps`.

    Args:
        num_blocks: blocks per stage; (3, 4, 6, 3) is Res2Net-50, (3, 4, 23, 3) Res2Net-101.
        base_width: the paper's w at 64 planes; a block of p planes has groups of
            floor(p * base_width / 64) channels (26: 26, 52, 104, 208 in the four stages).
        scale: the paper's s, groups per block; 1 gives a ResNet bottleneck.
        num_classes: outputs of `fc`.
        in_channels: image channels.
        base_channels: planes of the first stage; stages have base_channels x (1, 2, 4, 8)
            planes and 4x as many output channels (64: 256 ... 2048, the official network).
        stem_channels: output channels of the stem conv; None means base_channels (official).
    Input (N, in_channels, H, W) with H, W >= 1; `features` (N, 32 * base_channels, H/32, W/32)
    (each stride-2 step rounds up); output (N, num_classes) logits.
    Raises ValueError naming a bad argument: num_blocks not four positive ints, a scale below 1,
    non-positive sizes, or base_channels * base_width below 64 (groups of 0 channels).
    """

    def __init__(
        self,
        num_blocks: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 26,
        scale: int = 4,
        num_classes: int = 1000,
        in_channels: int = 3,
        base_channels: int = 64,
        stem_channels: int | None = None,
    ) -> None:
        super().__init__()
        check_num_blocks(num_blocks, len(_STAGE_STRIDES))
        _check_scale(scale)
        stem_channels = base_channels if stem_channels is None else stem_channels
        check_positive_ints(
            base_width=base_width,
            num_classes=num_classes,
            in_channels=in_channels,
            base_channels=base_channels,
            stem_channels=stem_channels,
        )
        if base_channels * base_width < 64:  # the first stage's groups would be empty
            raise ValueError(
                f"base_channels * base_width must be at least 64 so each group has a channel "
                f"(width = floor(base_channels * base_width / 64)), got {base_channels} * "
                f"{base_width} = {base_channels * base_width}; raise base_width or base_channels"
            )
        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels, stages = stem_channels, []
        for multiple, n, stride in zip(_STAGE_PLANES, num_blocks, _STAGE_STRIDES, strict=True):
            planes = base_channels * multiple
            stages.append(_stage(channels, planes, n, stride, base_width, scale))
            channels = planes * _EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = channels  # channels of `features`, = fc.in_features
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # the official initialisation (fc keeps PyTorch's default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv maps (N, C, h, w), everything before the global average pooling;
        C = `out_channels`, h = ceil(H / 32) for the usual sizes."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, stem, H/4, W/4)
        x = self.layer1(x)  # (N, 4b, H/4, W/4), b = base_channels
        x = self.layer2(x)  # (N, 8b, H/8, W/8)
        x = self.layer3(x)  # (N, 16b, H/16, W/16)
        return self.layer4(x)  # (N, 32b, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))  # (N, num_classes)


@register_model()
def res2net(
    num_blocks: Sequence[int] = (1, 1, 1, 1),
    base_width: int = 26,
    scale: int = 4,
    base_channels: int = 16,
    **kwargs,
) -> Res2Net:
    """Res2Net of any depth and width; the defaults are a CPU-sized one (one block per stage,
    16 base channels: 1.0M parameters with 1000 classes, half of them in `fc`), whose features
    for a 64x64 image are (N, 512, 2, 2). `res2net((3, 4, 6, 3), base_channels=64)` is
    Res2Net-50 26w x 4s. Other arguments (num_classes, in_channels, stem_channels) as in
    `Res2Net`.
    """
    return Res2Net(num_blocks, base_width, scale, base_channels=base_channels, **kwargs)


_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}  # blocks per stage of Res2Net-50 and -101


def _res2net(depth: int, base_width: int, scale: int, parameters: int) -> Callable[..., Res2Net]:
    """Register `res2net{depth}_{base_width}w_{scale}s(**kwargs)`, a network the paper names."""
    blocks = _DEPTHS[depth]
    return named_builder(
        f"res2net{depth}_{base_width}w_{scale}s",
        f"Res2Net-{depth} {base_width}w x {scale}s: {parameters:,} parameters.",
        lambda **kwargs: Res2Net(blocks, base_width=base_width, scale=scale, **kwargs),
    )


# The official (and timm's) networks, with their parameter counts at 1000 classes; 26w x 4s is
# the paper's Res2Net-50.
res2net50_26w_4s = _res2net(50, 26, 4, 25_699_120)
res2net50_48w_2s = _res2net(50, 48, 2, 25_287_304)
res2net50_14w_8s = _res2net(50, 14, 8, 25_059_816)
res2net50_26w_6s = _res2net(50, 26, 6, 37_051_448)
res2net50_26w_8s = _res2net(50, 26, 8, 48_403_776)
res2net101_26w_4s = _res2net(101, 26, 4, 45_206_688)
