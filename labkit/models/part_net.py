"""OPAM's PartNet: one classifier over an image's aligned part crops.

Peng, He and Zhao (TIP 2018; handout 004, section 1.5.3) align the parts they select by
clustering ClassNet's last-layer filters into groups (a head group, a body group, ...), so
that the k-th part of every image shows the same kind of thing. PartNet keeps that order: one
shared backbone runs on every crop, each crop's last feature map is average-pooled, and the n
vectors are concatenated in their aligned order (slot k = group k) before one linear layer, so
the classifier has separate weights for the head slot and the body slot.

Used in: 05_opam.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PartNet"]


class PartNet(nn.Module):
    """A shared backbone over n aligned part crops, the crops' pooled features concatenated,
    one linear classifier.

    Args:
        backbone: maps (M, 3, s, s) to the last feature map (M, C, h, w), or to a list of maps
            whose last is it (labkit's `TapBackbone`).
        channels: C.
        num_parts: n, the crops per image.
        num_classes: K.
    Input (N, n, 3, s, s); output (N, K) logits.
    Raises ValueError for an input whose part count is not n.
    """

    def __init__(self, backbone: nn.Module, channels: int, num_parts: int, num_classes: int):
        super().__init__()
        if num_parts < 1:
            raise ValueError(f"PartNet needs at least one part, got num_parts={num_parts}")
        self.backbone, self.num_parts = backbone, num_parts
        self.fc = nn.Linear(num_parts * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.dim() != 5 or x.shape[1] != self.num_parts:
            raise ValueError(
                f"PartNet expects (N, {self.num_parts}, 3, s, s) aligned crops, got "
                f"{tuple(x.shape)}"
            )
        n, parts = x.shape[:2]
        maps = self.backbone(x.flatten(0, 1))
        last = maps[-1] if isinstance(maps, (list, tuple)) else maps  # (N * n, C, h, w)
        pooled = last.mean(dim=(2, 3)).reshape(n, parts * last.shape[1])  # slot-major
        return self.fc(pooled)
