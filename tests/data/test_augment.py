"""Scale jittering: short side uniform in [s_min, s_max], then a crop and a flip."""

import pytest
import torch
from torchvision.transforms import v2

from labkit.data.augment import scale_jitter


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
