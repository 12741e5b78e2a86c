"""Training augmentation of VGG: scale jittering (Simonyan & Zisserman 2015, section 3.1).

Handout 001: each training image is rescaled isotropically so that its short side S is drawn
uniformly from [S_min, S_max] (256 and 512 in the paper), then a random crop of 224 x 224 is
taken and flipped horizontally at random. A fixed S (S_min = S_max) is single-scale training.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

from torchvision.transforms import v2

__all__ = ["scale_jitter"]


def scale_jitter(s_min: int = 256, s_max: int = 512, crop: int = 224) -> v2.Compose:
    """Random short side S in [s_min, s_max] (both included), random crop x crop, random flip.

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
