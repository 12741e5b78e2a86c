"""What is done to an image between its file and the network: normalisations and their
inverses for display, and the labs' augmentations.

- ImageNet's mean and std (torchvision's weights expect them), for the birds and the photos;
  `to_display_imagenet` undoes them.
- MEAN and STD of 0.5, mapping [0, 1] to [-1, 1], for the digits (`normalize`, `to_display`).
- VGG's scale jittering (Simonyan & Zisserman 2015, section 3.1), the digits' padded crops and
  the photo folders' resize-crop-flip.

Used in: 01_vgg_receptive_fields, 02_densenet_resnext, 03_facenet_knn, 04_bcnn_hbp, 05_opam.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MEAN",
    "STD",
    "digits_augmentation",
    "normalize",
    "normalize_imagenet",
    "photo_transform",
    "scale_jitter",
    "to_display",
    "to_display_imagenet",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights expect these
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGENET_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_IMAGENET_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)

MEAN = (0.5, 0.5, 0.5)  # per channel; maps [0, 1] to [-1, 1]
STD = (0.5, 0.5, 0.5)
# built once, read only: normalize() runs per image, and building tensors costs more than using them
_SCALE = torch.tensor([1.0 / (255.0 * s) for s in STD]).view(3, 1, 1)
_SHIFT = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)]).view(3, 1, 1)


def normalize_imagenet(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 tensor (3, H, W) normalised with ImageNet's mean and std."""
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
    return (pixels.to(torch.float32) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD


def to_display_imagenet(x: torch.Tensor) -> np.ndarray:
    """Normalised images (3, H, W) or (N, 3, H, W) as HWC float32 in [0, 1] for matplotlib."""
    x = x.detach().cpu().to(torch.float32) * _IMAGENET_STD + _IMAGENET_MEAN
    return x.clamp(0.0, 1.0).movedim(-3, -1).numpy()


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 3, H, W) as float32 normalised with MEAN and STD."""
    return images.to(torch.float32, copy=True).mul_(_SCALE).add_(_SHIFT)


def to_display(x: torch.Tensor) -> np.ndarray:
    """Images (3, H, W) or (N, 3, H, W), normalised float or uint8, as HWC float32 in [0, 1]."""
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    else:
        x = x.to(torch.float32) * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    return x.clamp(0.0, 1.0).movedim(-3, -1).numpy()  # (..., H, W, 3)


def scale_jitter(s_min: int = 256, s_max: int = 512, crop: int = 224) -> v2.Compose:
    """VGG's training augmentation: random short side S in [s_min, s_max] (both included),
    random crop x crop, random flip.

    Handout 001: each training image is rescaled isotropically so that its short side S is drawn
    uniformly from [S_min, S_max] (256 and 512 in the paper), then a random crop of 224 x 224 is
    taken and flipped horizontally at random. A fixed S (S_min = S_max) is single-scale training.
    Works on PIL images and on (..., C, H, W) tensors; normalise afterwards.

    Raises:
        ValueError: s_min < crop (the crop would not fit) or s_min > s_max.
    """
    if s_min < crop:
        raise ValueError(
            f"s_min={s_min} is smaller than the crop {crop}: a {crop} x {crop} crop does not fit "
            f"an image whose short side is {s_min}; use s_min >= {crop}"
        )
    if s_min > s_max:
        raise ValueError(f"s_min={s_min} is larger than s_max={s_max}; swap them")
    return v2.Compose([
        # RandomResize draws the size with torch.randint(min_size, max_size): max is excluded,
        # and a single size resizes the short side, keeping the aspect ratio
        v2.RandomResize(s_min, s_max + 1, antialias=True),
        v2.RandomCrop(crop),
        v2.RandomHorizontalFlip(p=0.5),
    ])  # fmt: skip


def digits_augmentation(image_size: int) -> v2.RandomCrop:
    """The handout's training augmentation for digits: a random crop with padding, no flips.

    Padding is image_size // 8 (RandomCrop(32, padding=4) at 32 px); a mirrored digit is another
    symbol, so there is no horizontal flip.
    """
    return v2.RandomCrop(image_size, padding=image_size // 8)


def photo_transform(
    resize: int,
    crop: int,
    train: bool,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> v2.Compose:
    """Resize the short side, crop (random with a flip for training, centre for testing), and
    normalise (ImageNet's statistics by default); PIL image in, float32 (3, crop, crop) out.

    With `train=False`, resize 256 and crop 224 this is torchvision's evaluation preset of its
    ImageNet weights (`labkit.models.weights.Weights.transforms`)."""
    steps = [v2.PILToTensor(), v2.Resize(resize, antialias=True)]
    steps += [v2.RandomCrop(crop), v2.RandomHorizontalFlip()] if train else [v2.CenterCrop(crop)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)
