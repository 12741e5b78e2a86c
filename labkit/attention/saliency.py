"""Object-level attention: class activation maps, the object box they point to, and how well
that box localises the bird.

- Class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization",
  CVPR 2016; handout 004, section 1.5.2): for a network ending in global average pooling and one
  linear layer, M_c(x, y) = sum_u w_u^c f_u(x, y), with f_u the last convolution's channel u and
  w^c the linear layer's row for class c. No gradient is needed. OPAM uses the predicted class,
  never the label, so the same code runs on test images.
- The class-agnostic activation map (Wei et al., "Selective Convolutional Descriptor
  Aggregation for Fine-Grained Image Retrieval", TIP 2017): the sum of the last convolution's
  maps over channels, where the network responds at all, whatever the class. A CAM covers only
  the places that tell the classes apart, which is the whole object only when those are spread
  over it (RESULTS.md, lab 05); the summed activations cover wherever the network responds.
  Lab 05 measures both.
- The object box: the map upsampled to the image, binarised, its largest connected region
  (`scipy.ndimage.label`), that region's bounding box, as the CAM paper describes its boxes
  (OPAM's authors' code keeps the largest of the boxes the CAM paper's generator makes at three
  thresholds).
- Localisation is scored against the true boxes: IoU per image and the fraction of images with
  IoU >= 0.5 (the usual criterion for a correct localisation).

Boxes are float tensors x1, y1, x2, y2 in pixels, x2 and y2 exclusive (a box covers columns
x1 <= x < x2), as torchvision's box operations take them.

Used in: 05_opam.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from labkit.training.model_utils import eval_mode, model_device

__all__ = [
    "Saliency",
    "activation_maps",
    "captured_output",
    "check_cam_layer",
    "class_activation_maps",
    "localisation_iou",
    "object_box",
    "object_boxes",
    "saliency_maps",
    "scaled",
]


@contextlib.contextmanager
def captured_output(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect `layer`'s outputs while the block runs; the hook is always removed on exit (a
    hook left registered keeps every captured map alive, loop after loop)."""
    outputs: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def class_activation_maps(
    features: torch.Tensor, fc_weight: torch.Tensor, classes: torch.Tensor
) -> torch.Tensor:
    """CAM: sum_u w_u^c f_u(x, y) for each image's class c.

    Args:
        features: (N, C, h, w), the last convolution's maps (what global average pooling reads).
        fc_weight: (K, C), the linear classifier's weight.
        classes: (N,) the class whose map to take for each image.
    Returns:
        (N, h, w), in the logits' units (the logit of class c is the map's mean plus the bias).
    Raises:
        ValueError: mismatched channels or counts.
    """
    if features.dim() != 4 or fc_weight.dim() != 2 or features.shape[1] != fc_weight.shape[1]:
        raise ValueError(
            f"need features (N, C, h, w) and a classifier weight (K, C); got "
            f"{tuple(features.shape)} and {tuple(fc_weight.shape)}"
        )
    if classes.shape != (features.shape[0],):
        raise ValueError(
            f"need one class per image: {features.shape[0]} images, classes {tuple(classes.shape)}"
        )
    return torch.einsum("nchw,nc->nhw", features, fc_weight[classes].to(features.dtype))


def activation_maps(features: torch.Tensor) -> torch.Tensor:
    """The class-agnostic map: the last convolution's maps summed over channels (SCDA).

    (N, C, h, w) -> (N, h, w). Raises ValueError for another shape.
    """
    if features.dim() != 4:
        raise ValueError(f"need features (N, C, h, w), got {tuple(features.shape)}")
    return features.sum(dim=1)


def scaled(maps: torch.Tensor) -> torch.Tensor:
    """Each of (N, h, w) maps min-max scaled to [0, 1] (a constant map becomes zeros)."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny)


class Saliency(NamedTuple):
    """What `saliency_maps` returns for N images."""

    maps: torch.Tensor  # (N, H, W) float32 in [0, 1], at the images' size
    predicted: torch.Tensor  # (N,) int64, the class each map is for
    probabilities: torch.Tensor  # (N, K) float32, the soft-max of the logits


def saliency_maps(
    model: nn.Module,
    images: torch.Tensor,
    *,
    feature_layer: nn.Module,
    classifier: nn.Linear,
    batch_size: int = 64,
) -> Saliency:
    """Class activation maps of `model`'s predicted class, upsampled to the images' size
    (bilinear) and scaled to [0, 1] per image.

    Args:
        model: a classifier ending in global average pooling of `feature_layer`'s output and the
            linear layer `classifier` (labkit's `GAPNet`, torchvision's ResNets, labkit's
            Res2Net); run in eval mode, without autograd, its training flag restored after.
        images: (N, 3, H, W), normalised as the model was trained; moved to the model's device
            in batches of `batch_size`.
        feature_layer: the module whose output global average pooling reads (the last
            convolution's maps, after their ReLU).
        classifier: the final linear layer, (K, C) weight.
    Returns:
        `Saliency` on the CPU.
    Raises:
        ValueError: `feature_layer` produced no (N, C, h, w) output in the forward pass, or
            not the maps the pooling reads: the CAM identity mean(CAM_c) + b_c = logit_c,
            checked on every batch, fails (another layer of the same width gives other,
            plausible-looking maps).
    """
    device = model_device(model)
    maps, predicted, probabilities = [], [], []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            with captured_output(feature_layer) as outputs:
                logits = model(batch)
            if not outputs or outputs[-1].dim() != 4:
                raise ValueError(
                    f"{type(feature_layer).__name__} gave no (N, C, h, w) maps in the forward "
                    "pass: pass the layer whose output the global average pooling reads"
                )
            check_cam_layer(model, feature_layer, classifier, outputs[-1], logits)
            classes = logits.argmax(dim=1)
            cam = class_activation_maps(outputs[-1].float(), classifier.weight.float(), classes)
            cam = F.interpolate(cam[:, None], size=images.shape[-2:], mode="bilinear",
                                align_corners=False)[:, 0]  # fmt: skip
            maps.append(scaled(cam).cpu())
            predicted.append(classes.cpu())
            probabilities.append(logits.float().softmax(dim=1).cpu())
    return Saliency(torch.cat(maps), torch.cat(predicted), torch.cat(probabilities))


def check_cam_layer(
    model: nn.Module,
    feature_layer: nn.Module,
    classifier: nn.Linear,
    features: torch.Tensor,
    logits: torch.Tensor,
) -> None:
    """Raise ValueError unless `features` (N, C, h, w), `feature_layer`'s output, are the maps
    whose global average `classifier` turns into `logits` (N, K): the CAM identity
    mean(CAM_c) + b_c = logit_c for every class, up to float rounding."""
    name = _module_name(model, feature_layer)
    remedy = (
        "pass the layer whose output global average pooling reads (labkit's GAPNet: "
        "model.backbone.features[-1]; ResNets and Res2Net: model.layer4; "
        "labkit.attention.pipeline.cam_layers(model) gives both)"
    )
    channels = features.shape[1]
    if channels != classifier.in_features:
        raise ValueError(
            f"feature_layer {name} gives {channels} channels but the classifier takes "
            f"{classifier.in_features}: its maps are not what the classifier weighs; {remedy}"
        )
    pooled = features.float().mean(dim=(2, 3))  # (N, C)
    expected = F.linear(pooled, classifier.weight.float(), _float(classifier.bias))  # (N, K)
    gap = float((expected - logits.float()).abs().max())
    scale = 1.0 + float(logits.float().abs().max())
    eps = max(torch.finfo(features.dtype).eps, torch.finfo(logits.dtype).eps)
    tolerance = max(1e-4, 50 * eps) * scale  # rounding of a sum over C channels
    if not gap <= tolerance:  # also a NaN
        raise ValueError(
            f"feature_layer {name} is not the layer global average pooling reads before the "
            f"classifier: its maps, pooled and weighed by the classifier, give logits up to "
            f"{gap:.3g} away from the model's (tolerance {tolerance:.2g}), so their class "
            f"activation maps would not be the model's; {remedy}"
        )


def _float(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.float()


def _module_name(model: nn.Module, layer: nn.Module) -> str:
    """`layer`'s dotted name in `model` (e.g. "backbone.features.16"), else its class name."""
    for name, module in model.named_modules():
        if module is layer and name:
            return name
    return type(layer).__name__


def object_box(saliency: torch.Tensor | np.ndarray, threshold: float) -> torch.Tensor:
    """The bounding box of the largest connected region of `saliency >= threshold` (OPAM's
    object localisation). Regions connect through the 8 neighbours of a pixel.

    Args:
        saliency: (H, W) map, e.g. from `saliency_maps` (in [0, 1]).
        threshold: the binarisation level, in the map's units.
    Returns:
        float32 (4,) x1, y1, x2, y2 in pixels, x2 and y2 exclusive; the whole image when no
        pixel reaches the threshold (nothing to localise: the object is taken to fill it).
    Raises:
        ValueError: a map that is not two-dimensional.
    """
    grid = np.asarray(saliency.detach().cpu() if torch.is_tensor(saliency) else saliency)
    if grid.ndim != 2:
        raise ValueError(f"need one (H, W) saliency map, got shape {grid.shape}")
    height, width = grid.shape
    regions, count = ndimage.label(grid >= threshold, structure=np.ones((3, 3)))
    if count == 0:
        return torch.tensor([0.0, 0.0, width, height])
    sizes = np.bincount(regions.ravel())[1:]
    rows, cols = np.nonzero(regions == 1 + int(sizes.argmax()))
    return torch.tensor(
        [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32
    )


def object_boxes(saliency: torch.Tensor, threshold: float) -> torch.Tensor:
    """`object_box` of each map of (N, H, W) saliency: (N, 4)."""
    if saliency.dim() != 3:
        raise ValueError(f"need (N, H, W) saliency maps, got shape {tuple(saliency.shape)}")
    if len(saliency) == 0:
        return torch.zeros(0, 4)
    return torch.stack([object_box(m, threshold) for m in saliency])


def localisation_iou(boxes: torch.Tensor, true_boxes: torch.Tensor) -> torch.Tensor:
    """IoU of each found box with its image's true box: (N, 4) and (N, 4) -> (N,).

    The diagonal of torchvision's `box_iou` without its N x N matrix (tested equal to it).
    Raises ValueError on shapes that are not two (N, 4) of one N.
    """
    if boxes.shape != true_boxes.shape or boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"need two (N, 4) box tensors, got {tuple(boxes.shape)} and {tuple(true_boxes.shape)}"
        )
    a, b = boxes.float(), true_boxes.float()
    top_left = torch.maximum(a[:, :2], b[:, :2])
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (bottom_right - top_left).clamp_min(0).prod(dim=1)
    area = (a[:, 2:] - a[:, :2]).prod(dim=1) + (b[:, 2:] - b[:, :2]).prod(dim=1)
    return inter / (area - inter)
