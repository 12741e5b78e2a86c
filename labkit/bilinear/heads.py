"""The heads over a backbone's feature maps, and the nets of a backbone and a head.

- `BilinearHead` / `BilinearCNN`: bilinear pooling of the last map, signed square root, L2
  normalisation, linear classifier (BCNN).
- `HBPHead` / `HBP`: HBP's three cross-layer interactions, each signed-square-rooted and
  L2-normalised, concatenated, linear classifier.
- `GAPHead` / `GAPNet`: the baseline, global average pooling of the last map and a linear
  classifier (lab 05's ClassNet too).

A net's `set_frozen(True)` is stage 1 of the two-stage training (only the head learns);
`set_frozen(False)` is stage 2 (everything trains).

Used in: 04_bcnn_hbp, 05_opam.
"""

from __future__ import annotations

import torch
from torch import nn

from labkit.bilinear.pooling import bilinear_pool, hbp_interactions, signed_sqrt_l2

__all__ = ["HBP", "BilinearCNN", "BilinearHead", "GAPHead", "GAPNet", "HBPHead"]


class BilinearHead(nn.Module):
    """BCNN's head: bilinear pooling, signed square root, L2 normalisation, linear classifier.

    Input (N, C, H, W) feature maps; output (N, num_classes) logits.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc(signed_sqrt_l2(bilinear_pool(x)))


class HBPHead(nn.Module):
    """HBP's head: three 1x1 projections to `d` channels (with bias), three cross-layer
    interactions summed over locations, signed square root and L2 normalisation of each,
    concatenated (3 * d), linear classifier.

    Input three feature maps (N, C_k, H, W); output (N, num_classes) logits.
    """

    def __init__(
        self, channels: tuple[int, int, int], d: int, num_classes: int, chunk: int = 1024
    ) -> None:
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Conv2d(c, d, kernel_size=1, bias=True) for c in channels
        )
        self.fc = nn.Linear(3 * d, num_classes)
        self.chunk = chunk

    def interactions(self, maps) -> torch.Tensor:
        """(3, N, d): the three interactions before the square root."""
        weights = tuple(p.weight.flatten(1) for p in self.projections)
        biases = tuple(p.bias for p in self.projections)
        return hbp_interactions(tuple(maps), weights, biases, self.chunk)

    def forward(self, maps) -> torch.Tensor:  # noqa: D102
        z = signed_sqrt_l2(self.interactions(maps))  # normalised per interaction
        return self.fc(torch.cat(tuple(z), dim=1))


class GAPHead(nn.Module):
    """The baseline: global average pooling of the last feature map, linear classifier."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc(x.mean(dim=(2, 3)))


class _BackboneAndHead(nn.Module):
    """A backbone that returns three maps, and a head over some of them."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.frozen = False  # stage 1: set_frozen(True)

    def set_frozen(self, frozen: bool) -> None:
        """Stage 1 (True): the backbone's parameters stop requiring gradients, and `forward`
        runs it in eval mode without autograd; stage 2 (False): everything trains."""
        self.frozen = frozen
        self.backbone.requires_grad_(not frozen)

    def head_input(self, maps: list[torch.Tensor]):
        """What the head reads of the backbone's three maps (default: the last)."""
        return maps[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not self.frozen:
            return self.head(self.head_input(self.backbone(x)))
        self.backbone.eval()  # batch-norm statistics stay as pretrained
        with torch.no_grad():
            maps = self.backbone(x)
        return self.head(self.head_input(maps))


class BilinearCNN(_BackboneAndHead):
    """BCNN: the backbone's last map (VGG-16: conv5_3 after ReLU), `BilinearHead`."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__(backbone, BilinearHead(backbone.channels[-1], num_classes))


class HBP(_BackboneAndHead):
    """Hierarchical bilinear pooling over the backbone's three maps, `HBPHead` with `d`."""

    def __init__(self, backbone: nn.Module, d: int, num_classes: int, chunk: int = 1024) -> None:
        super().__init__(backbone, HBPHead(backbone.channels, d, num_classes, chunk))

    def head_input(self, maps: list[torch.Tensor]):  # noqa: D102
        return maps


class GAPNet(_BackboneAndHead):
    """The baseline: global average pooling of the backbone's last map, linear classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__(backbone, GAPHead(backbone.channels[-1], num_classes))
