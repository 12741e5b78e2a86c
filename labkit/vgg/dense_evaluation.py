"""Dense evaluation: a VGG's classifier turned into convolutions and run on the whole image.

Simonyan & Zisserman (2015), section 3.2, after Sermanet et al. (OverFeat); handout 001: the
first fully connected layer becomes a g x g convolution (7 x 7 for 224-pixel inputs), the other
two become 1 x 1 convolutions, and the net, now fully convolutional, runs on the uncropped
image. On a g x g feature map it gives the original logits; on a larger image it gives a class
score map, which is averaged (sum-pooled) to one score vector per image. The soft-max
posteriors of the image and of its horizontal flip are averaged.

Works on any module with torchvision's VGG layout: `features` (an `nn.Sequential` of
convolutions and pools), `avgpool` (`nn.AdaptiveAvgPool2d((g, g))`) and `classifier` (an
`nn.Sequential` of `Linear`, `ReLU`, `Dropout`).

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from labkit.training.model_utils import eval_mode, model_device
from labkit.vgg.receptive_field import layer_geometry

__all__ = ["class_score_map", "dense_scores", "fully_convolutional", "min_input_size"]

# classifier layers that act on each value alone, so they act the same on a (N, C, h, w) map
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout,
)  # fmt: skip


def _feature_channels(features: nn.Module) -> int:
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("model.features holds no Conv2d; cannot tell its output channels")
    return convs[-1].out_channels


def _grid(model: nn.Module, channels: int, in_features: int) -> int:
    """g: the side of the feature map the first Linear reads, from the avgpool or in_features."""
    pool = getattr(model, "avgpool", None)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        size = pool.output_size
        h, w = (size, size) if isinstance(size, int) else size
        if h is None or h != w:
            raise ValueError(
                f"model.avgpool output size {size} is not square; dense evaluation needs a "
                "g x g grid, e.g. nn.AdaptiveAvgPool2d((7, 7))"
            )
        return int(h)
    side = math.isqrt(in_features // channels)
    if side * side * channels != in_features:
        raise ValueError(
            f"classifier's first Linear reads {in_features} features, not C*g*g for the "
            f"{channels} channels of model.features' last Conv2d; give the model an "
            "nn.AdaptiveAvgPool2d((g, g)) avgpool or a Linear(C*g*g, hidden)"
        )
    return side


def _as_conv(linear: nn.Linear, channels: int, kernel: int) -> nn.Conv2d:
    """A Conv2d computing `linear` on each kernel x kernel window of a `channels`-channel map."""
    conv = nn.Conv2d(
        channels, linear.out_features, kernel, bias=linear.bias is not None,
        device=linear.weight.device, dtype=linear.weight.dtype,
    )  # fmt: skip
    with torch.no_grad():
        # torch.flatten orders a (C, g, g) map channel first, so rows of W split as (C, g, g)
        conv.weight.copy_(linear.weight.view(linear.out_features, channels, kernel, kernel))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def fully_convolutional(model: nn.Module) -> nn.Sequential:
    """A fully convolutional copy of a VGG-layout `model` (weights copied; `model` untouched).

    The copy is `Sequential(features=..., classifier=Sequential(...))`: the same features, then
    the first Linear(C*g*g, h) as Conv2d(C, h, g), each further Linear as a 1 x 1 Conv2d, the
    ReLU and Dropout layers in place (classifier indices match the original's). The avgpool is
    dropped: a g x g feature map (224-pixel input) gives the logits (N, num_classes, 1, 1); a
    larger image gives a class score map.

    Raises:
        ValueError: no `features` or `classifier` (nn.Sequential), no Conv2d in features, no
            Linear in the classifier, a first Linear that does not read C*g*g features, or a
            classifier layer that is not Linear or element-wise (naming it).
    """
    features = getattr(model, "features", None)
    classifier = getattr(model, "classifier", None)
    if not isinstance(features, nn.Module) or not isinstance(classifier, nn.Sequential):
        raise ValueError(
            f"{type(model).__name__} lacks the VGG layout: dense evaluation needs "
            "model.features (the convolutions) and model.classifier (an nn.Sequential of Linear "
            "layers), as in torchvision.models.vgg16"
        )
    channels = _feature_channels(features)
    linears = [m for m in classifier if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model.classifier holds no nn.Linear; nothing to turn into convolutions")
    first = linears[0]
    grid = _grid(model, channels, first.in_features)
    if first.in_features != channels * grid * grid:
        raise ValueError(
            f"classifier's first Linear ({first}) reads {first.in_features} features, but "
            f"model.features gives {channels} channels on a {grid} x {grid} grid "
            f"({channels * grid * grid}); make it Linear({channels * grid * grid}, ...) or match "
            "the avgpool's output size to the Linear"
        )
    convs = OrderedDict()
    for name, layer in classifier.named_children():
        if isinstance(layer, nn.Linear):
            if layer is first:
                convs[name] = _as_conv(layer, channels, grid)
            else:
                convs[name] = _as_conv(layer, layer.in_features, 1)
        elif isinstance(layer, nn.Flatten):
            continue  # the map keeps its spatial axes
        elif isinstance(layer, _ELEMENTWISE):
            convs[name] = copy.deepcopy(layer)
        else:
            raise ValueError(
                f"classifier layer {name} ({layer}) has no convolutional equivalent here; only "
                "Linear and element-wise layers (ReLU, Dropout, ...) can be converted"
            )
    for name, layer in convs.items():  # every training flag as in the original
        layer.training = classifier.get_submodule(name).training
    head = nn.Sequential(convs)
    head.training = classifier.training
    fc_model = nn.Sequential(OrderedDict(features=copy.deepcopy(features), classifier=head))
    fc_model.training = model.training
    return fc_model


def _parts(fc_model: nn.Module) -> tuple[nn.Module, int]:
    """(features, g) of a model made by `fully_convolutional`."""
    features = getattr(fc_model, "features", None)
    classifier = getattr(fc_model, "classifier", None)
    modules = classifier.modules() if isinstance(classifier, nn.Module) else ()
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    if not isinstance(features, nn.Module) or not convs:
        raise ValueError(
            f"{type(fc_model).__name__} is not a fully convolutional VGG (features, then a "
            "classifier of convolutions); build one with fully_convolutional(model)"
        )
    return features, convs[0].kernel_size[0]


def min_input_size(fc_model: nn.Module) -> int | None:
    """The smallest image side whose feature map holds one g x g window (224 for VGG).

    Inverts the output-size formula n_out = floor((n + 2p - k') / s) + 1 layer by layer, from
    the last layer of `features` back to the image. None when a layer's geometry is unknown
    (see `labkit.vgg.receptive_field.layer_geometry`).
    """
    features, need = _parts(fc_model)
    for layer in reversed([m for m in features.modules() if not list(m.children())]):
        try:
            geometry = layer_geometry(layer)
        except ValueError:
            return None
        if geometry is not None:
            kernel, stride, padding, dilation = geometry
            need = max(1, (need - 1) * stride + dilation * (kernel - 1) + 1 - 2 * padding)
    return need


def class_score_map(fc_model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class score map of a fully convolutional net: logits at every g x g feature window.

    Runs in eval mode under no_grad (the model's training flags are restored).

    Args:
        fc_model: made by `fully_convolutional`.
        images: (N, 3, H, W), normalised as the model expects.

    Returns:
        Logits (N, num_classes, h, w) on the images' device; (N, num_classes, 1, 1) at the
        minimum size (224 x 224 for VGG), (N, 1000, 3, 3) at 288 x 288.

    Raises:
        ValueError: `fc_model` not fully convolutional, images not (N, C, H, W), or an image
            smaller than the minimum size (naming both).
    """
    features, grid = _parts(fc_model)
    if images.ndim != 4:
        raise ValueError(f"need images (N, C, H, W), got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    smallest = min_input_size(fc_model)
    if smallest is not None and min(height, width) < smallest:
        raise ValueError(
            f"input of {height} x {width} is smaller than one {grid} x {grid} window of "
            f"features; dense evaluation needs at least {smallest} x {smallest} (resize first)"
        )
    with torch.no_grad(), eval_mode(fc_model):
        maps = features(images.to(model_device(fc_model)))
        if min(maps.shape[-2:]) < grid:
            raise ValueError(
                f"input of {height} x {width} gives a {maps.shape[-2]} x {maps.shape[-1]} "
                f"feature map, smaller than one {grid} x {grid} window; use a larger image"
            )
        return fc_model.classifier(maps).to(images.device)


def dense_scores(fc_model: nn.Module, images: torch.Tensor, *, flip: bool = True) -> torch.Tensor:
    """Class posteriors by dense evaluation (Simonyan & Zisserman 2015, section 3.2).

    The class score map is averaged spatially (sum-pooled), then soft-maxed; with `flip`, the
    posteriors of the image and of its horizontal flip are averaged. Eval mode, no_grad, the
    model's training flags restored.

    Args:
        fc_model: made by `fully_convolutional`.
        images: (N, 3, H, W), each side at least `min_input_size(fc_model)`.
        flip: also score the horizontally flipped images.

    Returns:
        Posteriors (N, num_classes), rows summing to 1, on the images' device.

    Raises:
        ValueError: as `class_score_map`.
    """
    views = [images, images.flip(-1)] if flip else [images]
    posteriors = [F.softmax(class_score_map(fc_model, v).mean(dim=(-2, -1)), dim=1) for v in views]
    return torch.stack(posteriors).mean(dim=0)
