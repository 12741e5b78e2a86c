"""VGG-style backbones that hand over the three ReLU outputs of their last conv block
(relu5_1, relu5_2, relu5_3 in VGG-16), for BCNN, HBP and the GAP baseline.

- `vgg16_backbone`: torchvision's VGG-16 `features` up to relu5_3 (the last max-pool dropped:
  448 x 448 in, 28 x 28 x 512 out), parameter names as torchvision's (`features.N.weight`), so
  its ImageNet weights load when they are on disk (`labkit.models.weights.VGG16_WEIGHTS.find()`);
  nothing is downloaded.
- `small_vgg_backbone`: the same shape of network, narrow and with batch norm, built with
  torchvision's `make_layers`, for the `smoke` and `cpu` profiles where VGG-16 would not fit.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg16
from torchvision.models.vgg import make_layers

__all__ = ["TapBackbone", "small_vgg_backbone", "vgg16_backbone"]

VGG16_TAPS = (25, 27, 29)  # relu5_1, relu5_2, relu5_3 in torchvision's vgg16().features


class TapBackbone(nn.Module):
    """A VGG-style `features` stack returning the outputs of three of its layers.

    Args:
        features: the layers in order (an nn.Sequential whose keys are "0", "1", ...).
        taps: indices of the three layers whose outputs are returned (the last is the final
            layer kept).
        channels: the channels of the three outputs.
    Input (N, 3, H, W); output a list of three (N, C_k, H / s, W / s) maps, s the total stride.
    """

    def __init__(
        self, features: nn.Sequential, taps: tuple[int, int, int], channels: tuple
    ) -> None:
        super().__init__()
        self.features = features[: taps[-1] + 1]
        self.taps = tuple(taps)
        self.channels = tuple(channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # noqa: D102
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                maps.append(x)
        return maps


def vgg16_backbone(weights: str | None = None) -> TapBackbone:
    """VGG-16 up to relu5_3, taps relu5_1/5_2/5_3 (512 channels each, stride 16).

    Args:
        weights: a file of torchvision's VGG-16 state dict (e.g. the ImageNet weights found by
            `VGG16_WEIGHTS.find()`); None leaves the random initialisation.
    Raises ValueError naming the file when it does not hold VGG-16's features.
    """
    model = vgg16(weights=None)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        try:
            model.features.load_state_dict(features)
        except RuntimeError as err:
            raise ValueError(
                f"{weights} does not hold torchvision's VGG-16 weights: {err}"
            ) from err
    return TapBackbone(model.features, VGG16_TAPS, (512, 512, 512))


def small_vgg_backbone(widths: tuple[int, ...] = (32, 64, 128, 256)) -> TapBackbone:
    """A narrow VGG with batch norm: one conv per width, max-pool after each but the last,
    then two more convs at the last width, so the last block holds three conv-BN-ReLU layers
    as VGG-16's conv5 block does. Stride 2 ** (len(widths) - 1); taps its last three ReLUs.
    """
    cfg: list[int | str] = []
    for width in widths[:-1]:
        cfg += [width, "M"]
    cfg += [widths[-1]] * 3
    features = make_layers(cfg, batch_norm=True)
    relus = [i for i, layer in enumerate(features) if isinstance(layer, nn.ReLU)]
    return TapBackbone(features, tuple(relus[-3:]), (widths[-1],) * 3)
