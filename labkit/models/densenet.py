"""DenseNet-BC for small (32x32) images, after the lab 02 handout; layer counts in `summary`."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from labkit.models._checks import check_positive_ints
from labkit.models.registry import register_model

__all__ = ["DenseNet", "densenet_bc", "densenet39", "densenet_channels"]


class _Bottleneck(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k); returns the input with k new channels appended."""

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        width = 4 * growth_rate  # the 1x1 conv narrows to 4k so the 3x3 conv stays cheap
        self.layers = nn.Sequential(
            OrderedDict(
                norm1=nn.BatchNorm2d(in_channels),
                relu1=nn.ReLU(inplace=True),
                conv1=nn.Conv2d(in_channels, width, kernel_size=1, bias=False),
                norm2=nn.BatchNorm2d(width),
                relu2=nn.ReLU(inplace=True),
                conv2=nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.layers(x)  # (N, k, H, W)
        return torch.cat([x, new], dim=1)  # (N, C + k, H, W)


class _DenseBlock(nn.Sequential):
    """`num_layers` bottlenecks; each sees every earlier feature map, so channels grow by k each."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int) -> None:
        super().__init__(
            *(_Bottleneck(in_channels + i * growth_rate, growth_rate) for i in range(num_layers))
        )


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool2x2: compresses the channels and halves the feature map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )


@dataclass(frozen=True)
class _Stage:
    """One row of the channel plan: the model and `densenet_channels` both read it."""

    stage: str  # "stem", "block1", "transition1", ..., "head"
    kind: str  # "stem", "block", "transition" or "head"
    bottlenecks: int  # bottleneck layers in a dense block, 0 elsewhere
    in_channels: int
    out_channels: int

    @property
    def layers(self) -> int:
        """Convolution + fully connected layers in this stage (a bottleneck has two convs)."""
        return 2 * self.bottlenecks if self.kind == "block" else 1


def _plan(
    block_config: Sequence[int],
    growth_rate: int,
    compression: float,
    num_classes: int,
    in_channels: int,
) -> list[_Stage]:
    """Channel arithmetic of the whole network, stage by stage; validates the arguments."""
    if len(block_config) == 0 or any(n <= 0 for n in block_config):
        raise ValueError(
            f"block_config must be a non-empty sequence of positive ints, got {block_config!r}"
        )
    check_positive_ints(growth_rate=growth_rate, num_classes=num_classes, in_channels=in_channels)
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1], got {compression!r}")

    channels = 2 * growth_rate
    plan = [_Stage("stem", "stem", 0, in_channels, channels)]
    for i, num_layers in enumerate(block_config, start=1):
        grown = channels + num_layers * growth_rate  # every bottleneck appends k channels
        plan.append(_Stage(f"block{i}", "block", num_layers, channels, grown))
        channels = grown
        if i < len(block_config):
            compressed = math.floor(channels * compression)
            if compressed < 1:
                raise ValueError(
                    f"compression={compression!r} leaves no channels after block{i} "
                    f"({channels} channels); use a larger compression"
                )
            plan.append(_Stage(f"transition{i}", "transition", 0, channels, compressed))
            channels = compressed
    plan.append(_Stage("head", "head", 0, channels, num_classes))
    return plan


def densenet_channels(
    block_config: Sequence[int],
    growth_rate: int = 12,
    compression: float = 0.5,
    image_size: int = 32,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
) -> pd.DataFrame:
    """Channels in and out, output feature-map side and conv+fc layers of every DenseNet stage.

    Used in: 02_densenet_resnext (the "channels at each block, computed by code" table).

    Returns:
        One row per stage (stem, block i, transition i, head) with columns `stage`,
        `bottlenecks`, `in_channels`, `out_channels`, `size` (side of the output feature map;
        1 for the head, after global pooling) and `layers`; `layers.sum()` is the depth.
    """
    plan = _plan(block_config, growth_rate, compression, num_classes, in_channels)
    if image_size < 2 ** (len(block_config) - 1):
        raise ValueError(
            f"image_size={image_size} is too small for {len(block_config)} blocks: each of the "
            f"{len(block_config) - 1} transitions halves it; use at least "
            f"{2 ** (len(block_config) - 1)}"
        )
    rows, size = [], image_size
    for stage in plan:
        if stage.kind == "transition":
            size //= 2
        elif stage.kind == "head":
            size = 1
        row = {k: v for k, v in asdict(stage).items() if k != "kind"}
        rows.append({**row, "size": size, "layers": stage.layers})
    return pd.DataFrame(rows)


class DenseNet(nn.Module):
    """DenseNet-BC for 32x32 images: 3x3 stem, dense blocks with transitions, pooled linear head.

    Unlike ImageNet DenseNets the stem has stride 1 and no pooling; global average pooling is
    adaptive, so any input side of at least 2 ** (len(block_config) - 1) works.
    """

    def __init__(
        self,
        block_config: Sequence[int] = (2, 5, 4, 6),
        growth_rate: int = 12,
        compression: float = 0.5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        plan = _plan(block_config, growth_rate, compression, num_classes, in_channels)
        features: OrderedDict[str, nn.Module] = OrderedDict()
        for stage in plan[:-1]:
            c_in, c_out = stage.in_channels, stage.out_channels
            if stage.kind == "stem":
                features["stem"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
            elif stage.kind == "block":
                features[stage.stage] = _DenseBlock(stage.bottlenecks, c_in, growth_rate)
            else:
                features[stage.stage] = _Transition(c_in, c_out)
        head = plan[-1]
        features["norm"] = nn.BatchNorm2d(head.in_channels)
        features["relu"] = nn.ReLU(inplace=True)
        self.features = nn.Sequential(features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head.in_channels, head.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C, H / 2**(B-1), W / 2**(B-1)) for B blocks
        x = torch.flatten(self.avgpool(x), 1)  # (N, C)
        return self.classifier(x)  # (N, num_classes)


# Builders differ only in their arguments, so they call DenseNet directly (no `_densenet` helper).


@register_model()
def densenet_bc(
    block_config: Sequence[int] = (2, 5, 4, 6),
    growth_rate: int = 12,
    compression: float = 0.5,
    num_classes: int = 10,
    **kwargs,
) -> DenseNet:
    """DenseNet-BC for 32x32 images with any `block_config` (bottlenecks per dense block)."""
    return DenseNet(block_config, growth_rate, compression, num_classes, **kwargs)


@register_model()
def densenet39(**kwargs) -> DenseNet:
    """The handout's DenseNet, blocks (2, 5, 4, 6), k=12: 38 convs + 1 fc = 39 layers."""
    return DenseNet(block_config=(2, 5, 4, 6), growth_rate=12, compression=0.5, **kwargs)
