"""Layer and parameter counts: what the depth in "DenseNet-121" or "ResNeXt-29" counts."""

from __future__ import annotations

from torch import nn

__all__ = ["count_layers", "count_parameters"]

_CONV_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_SHORTCUT_NAMES = {"shortcut", "downsample"}  # labkit's and torchvision's projection shortcuts


def count_layers(
    model: nn.Module, *, conv: bool = True, linear: bool = True, shortcuts: bool = True
) -> int:
    """Number of convolution and fully connected layers (BN, pooling, activations don't count).

    This is the handout's convention, and it gives the published depth of torchvision's
    DenseNets (densenet121 -> 121). Projection shortcuts (convs inside a module named
    `shortcut` or `downsample`) count unless `shortcuts=False`, the ResNet paper's convention:
    torchvision's resnet18 has 21 such layers, 18 without its 3 downsample convs.

    Used in: 02_densenet_resnext (Question 1, layer counting).
    """
    kinds = (_CONV_TYPES if conv else ()) + ((nn.Linear,) if linear else ())
    return sum(
        1
        for name, module in model.named_modules()
        if isinstance(module, kinds) and (shortcuts or not _SHORTCUT_NAMES & set(name.split(".")))
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared ones once); only `requires_grad` ones if asked."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
