"""Transforms: scale jittering (short side uniform in [s_min, s_max], then a crop and a flip),
the digits' normalisation and its inverse, their augmentation that shifts but never mirrors."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from labkit.data.datasets import TensorImageDataset
from labkit.data.transforms import digits_augmentation, normalize, scale_jitter, to_display


def test_output_is_a_crop_of_the_rescaled_image():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    transform = scale_jitter()
    assert [type(t) for t in transform.transforms] == [
        v2.RandomResize, v2.RandomCrop, v2.RandomHorizontalFlip,
    ]  # fmt: skip
    assert all(transform(image).shape == (3, 224, 224) for _ in range(20))


def test_short_side_covers_s_min_to_s_max_inclusive_keeping_the_aspect():
    resize = scale_jitter(256, 512).transforms[0]
    torch.manual_seed(0)
    image = torch.zeros(3, 3, 4)  # tiny: the short side 3 becomes S, the long one floor(4 S / 3)
    shapes = [resize(image).shape[-2:] for _ in range(200)]
    assert all(256 <= h <= 512 and w == 4 * h // 3 for h, w in shapes)
    torch.manual_seed(0)
    drawn = torch.tensor([resize.make_params([image])["size"][0] for _ in range(5000)])
    assert drawn.min() == 256 and drawn.max() == 512
    assert len(drawn.unique()) == 257  # every S in [256, 512] is drawn
    fixed = scale_jitter(384, 384).transforms[0]  # single-scale training
    assert {fixed(image).shape[-2] for _ in range(10)} == {384}


def test_crop_position_and_flip_vary():
    torch.manual_seed(0)
    image = torch.arange(12 * 16, dtype=torch.float32).view(1, 12, 16)
    transform = scale_jitter(12, 12, crop=8)  # no rescale: the crops come from the image
    outputs = [transform(image) for _ in range(100)]
    corners = {(out[0, 0, 0].item(), out[0, 0, -1].item()) for out in outputs}
    assert len(corners) > 10
    assert any(out[0, 0, 0] > out[0, 0, -1] for out in outputs)  # flipped: left > right


def test_bad_scales_say_what_is_wrong():
    with pytest.raises(ValueError, match="s_min=200 is smaller than the crop 224"):
        scale_jitter(200, 512)
    with pytest.raises(ValueError, match="s_min=400 is larger than s_max=300"):
        scale_jitter(400, 300)


def _noise(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 images (n, 3, size, size): horizontally asymmetric with certainty."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))  # fmt: skip


def _offsets(out: torch.Tensor, image: torch.Tensor, pad: int) -> list[tuple[int, int]]:
    """Every (dy, dx) at which `out` is a crop of `image` padded with zeros by `pad`."""
    padded = F.pad(image, (pad, pad, pad, pad))
    size = image.shape[-1]
    return [
        (dy, dx)
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
        if torch.equal(padded[:, dy : dy + size, dx : dx + size], out)
    ]


def test_normalize_and_to_display_invert_each_other() -> None:
    images = _noise(2, 5)
    x = normalize(images)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x, v2.Normalize([0.5] * 3, [0.5] * 3)(images.float() / 255))
    shown = to_display(x)
    assert shown.shape == (2, 5, 5, 3)
    torch.testing.assert_close(torch.from_numpy(shown), images.permute(0, 2, 3, 1) / 255.0)
    assert to_display(images[0]).shape == (5, 5, 3)  # uint8 and single images too


@pytest.mark.parametrize("size", [16, 32])
def test_augmentation_shifts_but_never_mirrors(size: int) -> None:
    torch.manual_seed(0)
    pad = size // 8
    image = _noise(1, size)[0]
    mirrored = image.flip(-1)
    augment = digits_augmentation(size)
    seen = set()
    for _ in range(60):
        out = augment(image)
        assert out.shape == image.shape and out.dtype == torch.uint8
        offsets = _offsets(out, image, pad)
        assert len(offsets) == 1  # a shifted copy of the image itself
        assert not _offsets(out, mirrored, pad)  # never the mirror image
        seen.add(offsets[0])
    assert len(seen) > 10  # the crops really move


def test_dataset_applies_augmentation_before_normalising() -> None:
    torch.manual_seed(1)
    images = _noise(2, 16)
    data = TensorImageDataset(images, torch.tensor([0, 1]), transform=digits_augmentation(16))
    for _ in range(20):
        x, _ = data[1]
        as_uint8 = (torch.from_numpy(to_display(x)).permute(2, 0, 1) * 255).round().to(torch.uint8)
        assert _offsets(as_uint8, images[1], 2)
