"""ResNet-18 for small (32x32) images as an embedding network: the lab 03 (FaceNet) backbone.

Used in: 03_facenet_knn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1
from torchvision.ops.misc import Conv2dNormActivation

from labkit.models._checks import check_num_blocks, check_positive_ints
from labkit.models.registry import register_model

__all__ = ["ResNetEmbedding", "resnet18_embedding"]

_STAGE_WIDTHS = (1, 2, 4, 8)  # stage channels as multiples of `width` (64: 64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)  # feature maps 32 -> 32 -> 16 -> 8 -> 4 for a 32x32 input


def _stage(in_channels: int, channels: int, num_blocks: int, stride: int) -> nn.Sequential:
    """`num_blocks` torchvision BasicBlocks; the first projects its shortcut if shapes change."""
    downsample = None
    if stride != 1 or in_channels != channels:
        downsample = nn.Sequential(conv1x1(in_channels, channels, stride), nn.BatchNorm2d(channels))
    blocks = [BasicBlock(in_channels, channels, stride, downsample)]
    blocks += [BasicBlock(channels, channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class ResNetEmbedding(nn.Module):
    """ResNet for 32x32 images whose output is an embedding of norm `alpha` (no classifier).

    Normalising and then scaling by `alpha` fixes every embedding's norm (Ranjan et al. 2017,
    L2-constrained softmax), so distances lie in [0, 2 * alpha] and a triplet margin has a
    fixed scale: the handout's margin 2.0 goes with alpha 10. `width` is the stem's and the
    first stage's channels (ResNet's 64); the stages have width x (1, 2, 4, 8) channels.
    """

    def __init__(
        self,
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        embedding_size: int = 128,
        alpha: float = 10.0,
        in_channels: int = 3,
        width: int = 64,
    ) -> None:
        super().__init__()
        check_num_blocks(num_blocks, len(_STAGE_STRIDES))
        check_positive_ints(embedding_size=embedding_size, in_channels=in_channels, width=width)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(
                f"alpha (the embeddings' norm) must be a positive number, got {alpha!r}"
            )
        self.embedding_size = embedding_size
        self.alpha = float(alpha)

        self.stem = Conv2dNormActivation(in_channels, width, kernel_size=3)
        channels, stages = width, []
        for multiple, n, stride in zip(_STAGE_WIDTHS, num_blocks, _STAGE_STRIDES, strict=True):
            stages.append(_stage(channels, width * multiple, n, stride))
            channels = width * multiple
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, embedding_size)
        for module in self.modules():  # torchvision's ResNet initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (N, embedding_size), each of norm `alpha`, of images (N, C, H, W)."""
        x = self.stem(x)  # (N, w, H, W), w = width
        x = self.layer1(x)  # (N, w, H, W)
        x = self.layer2(x)  # (N, 2w, H/2, W/2)
        x = self.layer3(x)  # (N, 4w, H/4, W/4)
        x = self.layer4(x)  # (N, 8w, H/8, W/8)
        x = self.fc(torch.flatten(self.avgpool(x), 1))  # (N, embedding_size)
        return self.alpha * F.normalize(x, dim=1)


@register_model()
def resnet18_embedding(embedding_size: int = 128, alpha: float = 10.0, **kwargs) -> ResNetEmbedding:
    """The handout's ResNet-18 embedding: blocks (2, 2, 2, 2), 128-d embeddings of norm 10
    (`width=32` gives a narrower variant with a quarter of the multiply-adds).

    18 counts the stem, 16 block convs and the fc; with the 3 projection shortcuts
    `count_layers(model) == 21` (`count_layers(model, shortcuts=False) == 18`).
    """
    return ResNetEmbedding((2, 2, 2, 2), embedding_size, alpha, **kwargs)
