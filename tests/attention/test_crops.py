"""Box crops for ObjectNet and PartNet."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from labkit.attention.crops import BoxCrops, crop_boxes


def test_a_crop_at_its_own_size_is_the_pixels_of_the_box() -> None:
    image = torch.arange(3 * 10 * 12, dtype=torch.float32).reshape(3, 10, 12)
    crops = crop_boxes(image, torch.tensor([[2.0, 3.0, 6.0, 7.0], [0.0, 0.0, 12.0, 10.0]]), 4)
    assert crops.shape == (2, 3, 4, 4)
    torch.testing.assert_close(crops[0], image[:, 3:7, 2:6])  # 1 sample per pixel centre
    assert crop_boxes(image, torch.zeros(0, 4), 5).shape == (0, 3, 5, 5)


def test_crop_boxes_resizes_like_bilinear_interpolation() -> None:
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    # halving a box averages 2 x 2 blocks: what area interpolation gives
    got = crop_boxes(image, torch.tensor([[4.0, 4.0, 12.0, 12.0]]), 4)[0]
    want = torch.nn.functional.avg_pool2d(image[None, :, 4:12, 4:12], 2)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_crop_boxes_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        crop_boxes(torch.zeros(3, 4, 4), torch.zeros(1, 4), 0)
    with pytest.raises(ValueError, match=r"\(K, 4\)"):
        crop_boxes(torch.zeros(3, 4, 4), torch.zeros(4), 2)


def test_box_crops_gives_one_crop_or_one_aligned_set_per_image() -> None:
    images = torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    base = TensorDataset(images, torch.tensor([0, 2, 1]))
    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [2, 4, 12, 8]])
    objects = BoxCrops(base, boxes, 6)
    crop, label = objects[1]
    assert crop.shape == (3, 6, 6) and label == 2 and len(objects) == 3
    torch.testing.assert_close(crop, crop_boxes(images[1], boxes[1:2], 6)[0])
    parts = BoxCrops(base, torch.stack([boxes, boxes.flip(0)], dim=1), 5)
    crops, label = parts[0]
    assert crops.shape == (2, 3, 5, 5) and label == 0
    torch.testing.assert_close(crops[1], crop_boxes(images[0], boxes[2:3], 5)[0])


def test_box_crops_flips_every_crop_of_an_item_together() -> None:
    images = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    boxes = torch.tensor([[[0.0, 0, 6, 6], [6, 6, 12, 12]]])
    still = BoxCrops(TensorDataset(images, torch.tensor([0])), boxes, 6)[0][0]
    flipping = BoxCrops(TensorDataset(images, torch.tensor([0])), boxes, 6, flip=True)
    torch.manual_seed(0)
    seen = {bool(torch.equal(flipping[0][0], still.flip(-1))) for _ in range(20)}
    assert seen == {True, False}  # flipped and not, the slots never swapped


def test_box_crops_rejects_a_box_count_that_is_not_one_per_image() -> None:
    base = TensorDataset(torch.zeros(3, 3, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="per image"):
        BoxCrops(base, torch.zeros(2, 4), 4)
    with pytest.raises(ValueError, match="at least 1"):
        BoxCrops(base, torch.zeros(3, 4), 0)
