"""ResNeXt for small (32x32) images: the lab 02 handout's three-stage network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from labkit.models._checks import check_num_blocks, check_positive_ints
from labkit.models.registry import register_model

__all__ = ["ResNeXt", "resnext", "resnext29_16x8d"]

_STEM_CHANNELS = 64  # the handout's 1x1 stem, 3 -> 64
_STAGE_STRIDES = (1, 2, 2)  # feature maps 32 -> 32 -> 16 -> 8 for a 32x32 input


class _Block(nn.Module):
    """Conv1x1 -> grouped Conv3x3 (groups = cardinality) -> Conv1x1, plus a shortcut; ReLU after.

    Differs from torchvision's Bottleneck: expansion 2 (not 4) and width = cardinality * width.
    """

    expansion = 2

    def __init__(
        self, in_channels: int, cardinality: int, bottleneck_width: int, stride: int = 1
    ) -> None:
        super().__init__()
        width = cardinality * bottleneck_width  # C groups of w channels each
        out_channels = self.expansion * width
        self.residual = nn.Sequential(
            Conv2dNormActivation(in_channels, width, kernel_size=1),
            Conv2dNormActivation(width, width, kernel_size=3, stride=stride, groups=cardinality),
            Conv2dNormActivation(width, out_channels, kernel_size=1, activation_layer=None),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:  # projection when the shape changes
            self.shortcut = Conv2dNormActivation(
                in_channels, out_channels, kernel_size=1, stride=stride, activation_layer=None
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x) + self.shortcut(x)  # (N, 2*C*w, H/stride, W/stride)
        return self.relu(out)


def _stage(
    in_channels: int, num_blocks: int, cardinality: int, bottleneck_width: int, stride: int
) -> nn.Sequential:
    """`num_blocks` blocks; only the first one changes the stride and the channel count."""
    out_channels = _Block.expansion * cardinality * bottleneck_width
    return nn.Sequential(
        *(
            _Block(in_channels if i == 0 else out_channels, cardinality, bottleneck_width, s)
            for i, s in enumerate([stride] + [1] * (num_blocks - 1))
        )
    )


class ResNeXt(nn.Module):
    """Three-stage ResNeXt for 32x32 images; the bottleneck width doubles after each stage."""

    def __init__(
        self,
        num_blocks: Sequence[int] = (3, 3, 3),
        cardinality: int = 32,
        bottleneck_width: int = 4,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_num_blocks(num_blocks, len(_STAGE_STRIDES))
        check_positive_ints(
            cardinality=cardinality,
            bottleneck_width=bottleneck_width,
            num_classes=num_classes,
            in_channels=in_channels,
        )

        self.stem = Conv2dNormActivation(in_channels, _STEM_CHANNELS, kernel_size=1)
        channels, stages = _STEM_CHANNELS, []
        for i, (n, stride) in enumerate(zip(num_blocks, _STAGE_STRIDES, strict=True)):
            width = bottleneck_width * 2**i
            stages.append(_stage(channels, n, cardinality, width, stride))
            channels = _Block.expansion * cardinality * width
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, 64, H, W)
        x = self.layer1(x)  # (N, 2*C*w, H, W)
        x = self.layer2(x)  # (N, 4*C*w, H/2, W/2)
        x = self.layer3(x)  # (N, 8*C*w, H/4, W/4)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 8*C*w)
        return self.fc(x)  # (N, num_classes)


# Builders differ only in their arguments, so they call ResNeXt directly (no `_resnext` helper).


@register_model()
def resnext(
    num_blocks: Sequence[int] = (3, 3, 3),
    cardinality: int = 32,
    bottleneck_width: int = 4,
    **kwargs,
) -> ResNeXt:
    """ResNeXt for 32x32 images with any blocks per stage, cardinality and bottleneck width."""
    return ResNeXt(num_blocks, cardinality, bottleneck_width, **kwargs)


@register_model()
def resnext29_16x8d(**kwargs) -> ResNeXt:
    """The handout's ResNeXt for lab 02: blocks (3, 3, 3), cardinality 16, width 8.

    Named by the course's rule (conv + fc layers on the main path): 1 stem + 27 block convs +
    1 fc = 29, `count_layers(model, shortcuts=False) == 29`. The handout calls it ResNeXt-32
    because it also counts the 3 projection shortcuts.
    """
    return ResNeXt(num_blocks=(3, 3, 3), cardinality=16, bottleneck_width=8, **kwargs)
