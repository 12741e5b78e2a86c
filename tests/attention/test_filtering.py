"""Patch filtering: roi_align crops against plain resizes, batched scores against one patch at a
time, thresholds and the dataset of kept patches."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn

from labkit.attention.filtering import (
    crop_patches,
    filter_patches,
    kept_fraction,
    patch_scores,
)


def _model(num_classes: int = 5) -> nn.Module:
    """Any patch size in, logits out; dropout shows whether eval mode is on."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(24, num_classes),
    ).double()  # fmt: skip


def _smooth(height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) of slow sinusoids: at most 0.2 change from one pixel to the next."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([torch.sin(x / 6), torch.cos(y / 5), torch.sin((x + y) / 8)])[None]


def _random_boxes(count: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 4) boxes with corners anywhere inside a height x width image, at least 2 px."""
    xy = torch.rand(count, 2, generator=generator) * torch.tensor([width - 2.0, height - 2.0])
    wh = 2 + torch.rand(count, 2, generator=generator) * (torch.tensor([width, height]) - 2 - xy)
    return torch.cat([xy, xy + wh], dim=1)


@pytest.fixture
def batch():
    """Four 20 x 24 float64 images, 0 to 9 boxes each (17 in all), labels."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 20, 24, generator=generator, dtype=torch.float64)
    boxes = [_random_boxes(n, 20, 24, generator) for n in (5, 0, 9, 3)]
    return images, boxes, torch.tensor([1, 4, 0, 2])


def test_a_whole_image_box_is_a_bilinear_resize():
    images = torch.rand(2, 3, 40, 50)
    crops = crop_patches(images, [torch.tensor([[0.0, 0.0, 50.0, 40.0]]), torch.zeros(0, 4)], 64)
    expected = F.interpolate(images[:1], size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(crops, expected)


def test_an_enlarged_integer_box_matches_interpolate_inside_its_border():
    images = torch.rand(1, 3, 40, 50)
    crops = crop_patches(images, [torch.tensor([[5.0, 7.0, 15.0, 17.0]])], 20)
    expected = F.interpolate(images[..., 7:17, 5:15], size=(20, 20), mode="bilinear")
    # along the border roi_align blends in the pixels just outside the box, interpolate repeats
    # the box's own edge: equal everywhere else
    torch.testing.assert_close(crops[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])


def test_shrinking_by_a_whole_factor_averages_blocks():
    images = torch.rand(2, 3, 40, 50)
    crops = crop_patches(images, torch.tensor([[1.0, 4.0, 6.0, 36.0, 38.0]]), 16)
    torch.testing.assert_close(crops, F.avg_pool2d(images[1:, :, 6:38, 4:36], 2))


@pytest.mark.parametrize("box, size", [((4, 6, 36, 38), 16), ((5, 7, 15, 17), 20),
                                       ((3, 2, 40, 35), 24), ((0, 0, 50, 40), 32)])  # fmt: skip
def test_crops_are_close_to_torchvision_resized_crop(box, size):
    image = _smooth(40, 50)
    x1, y1, x2, y2 = box
    crops = crop_patches(image, [torch.tensor([box], dtype=torch.float32)], size)
    expected = TF.resized_crop(image, y1, x1, y2 - y1, x2 - x1, [size, size], antialias=True)
    # both sample bilinearly, but roi_align reads a quarter pixel beyond the box's edge when
    # enlarging (at most 0.25 x 0.2 = 0.05 here) and averages with a box filter, not a
    # triangle, when shrinking
    torch.testing.assert_close(crops, expected, atol=0.06, rtol=0)


def test_list_and_indexed_boxes_give_the_same_crops_image_by_image(batch):
    images, boxes, _ = batch
    crops = crop_patches(images, boxes, 8)
    assert crops.shape == (17, 3, 8, 8) and crops.dtype == torch.float64
    singles = [crop_patches(images[[i]], [box[None]], 8) for i, b in enumerate(boxes) for box in b]
    torch.testing.assert_close(crops, torch.cat(singles))
    indexed = torch.cat([F.pad(b, (1, 0), value=i) for i, b in enumerate(boxes)])  # (17, 5)
    torch.testing.assert_close(crop_patches(images, indexed, 8), crops)
    assert crop_patches(images, [torch.zeros(0, 4)] * 4, 8).shape == (0, 3, 8, 8)


def test_crop_patches_bad_input_says_what_is_wrong(batch):
    images, boxes, _ = batch
    with pytest.raises(ValueError, match="got 3 box tensors for 4 images"):
        crop_patches(images, boxes[:3], 8)
    with pytest.raises(ValueError, match="patch size must be at least 1 pixel, got 0"):
        crop_patches(images, boxes, 0)
    bad = [b.clone() for b in boxes]
    bad[2][4, 2] = bad[2][4, 0]
    with pytest.raises(ValueError, match="image 2: box 4 .* is empty"):
        crop_patches(images, bad, 8)
    with pytest.raises(ValueError, match=r"image 0: need boxes \(P, 4\)"):
        crop_patches(images, [torch.zeros(3)] + boxes[1:], 8)
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 4\)"):
        crop_patches(images, torch.tensor([[4.0, 0, 0, 5, 5]]), 8)
    with pytest.raises(ValueError, match=r"need float images \(N, C, H, W\)"):
        crop_patches(images[0], boxes[:1], 8)


def test_patch_scores_equal_one_patch_at_a_time(batch):
    images, boxes, labels = batch
    model = _model().train()
    scores = patch_scores(model, images, boxes, labels, size=8, batch_size=4)
    assert all(m.training for m in model.modules())  # flags restored
    model.eval()
    for i, (image_boxes, image_scores) in enumerate(zip(boxes, scores, strict=True)):
        expected = [
            F.softmax(model(crop_patches(images[[i]], [box[None]], 8)), dim=1)[0, labels[i]].item()
            for box in image_boxes
        ]
        assert image_scores.shape == (len(image_boxes),)
        torch.testing.assert_close(image_scores, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("batch_size", [1, 4, 16, 17, 256])
def test_patches_go_through_the_model_in_batches_across_images(batch, batch_size):
    images, boxes, labels = batch
    model, calls = _model(), []
    model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    patch_scores(model, images, boxes, labels, size=8, batch_size=batch_size, progress=True)
    assert len(calls) == math.ceil(17 / batch_size) and sum(calls) == 17
    assert all(n == batch_size for n in calls[:-1])


def test_patch_scores_bad_input(batch):
    images, boxes, labels = batch
    model = _model()
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        patch_scores(model, images, boxes, labels, size=8, batch_size=0)
    with pytest.raises(ValueError, match=r"one label per image: 4, got \(3,\)"):
        patch_scores(model, images, boxes, labels[:3], size=8)
    with pytest.raises(ValueError, match="got 2 box tensors for 4 images"):
        patch_scores(model, images, boxes[:2], labels, size=8)
    with pytest.raises(ValueError, match="patch size must be at least 1 pixel"):
        patch_scores(model, images, boxes, labels, size=0)


def test_filter_keeps_scores_above_the_threshold_best_first():
    boxes = [torch.arange(20.0).view(5, 4), torch.arange(8.0).view(2, 4), torch.zeros(0, 4)]
    scores = [torch.tensor([0.5, 0.9, 0.2, 0.7, 0.9]), torch.tensor([0.1, 0.3]), torch.zeros(0)]
    kept = filter_patches(boxes, scores, threshold=0.5)
    torch.testing.assert_close(kept[0], boxes[0][[1, 4, 3]])  # 0.5 is not above 0.5; ties in order
    assert kept[1].shape == (0, 4) and kept[2].shape == (0, 4)
    top = filter_patches(boxes, scores, threshold=0.25, max_per_image=2)
    torch.testing.assert_close(top[0], boxes[0][[1, 4]])
    torch.testing.assert_close(top[1], boxes[1][[1]])
    assert kept_fraction(kept, boxes) == 3 / 7 and kept_fraction(top, boxes) == 3 / 7
    assert kept_fraction(filter_patches(boxes, scores, threshold=0.0), boxes) == 1.0


def test_filter_bad_input_says_what_is_wrong():
    boxes, scores = [torch.zeros(3, 4)], [torch.zeros(3)]
    with pytest.raises(ValueError, match="1 box tensors but 2 score tensors"):
        filter_patches(boxes, scores * 2, threshold=0.5)
    with pytest.raises(ValueError, match=r"image 0: 3 boxes but scores \(2,\)"):
        filter_patches(boxes, [torch.zeros(2)], threshold=0.5)
    with pytest.raises(ValueError, match=r"threshold is a probability in \[0, 1\], got 50"):
        filter_patches(boxes, scores, threshold=50)
    with pytest.raises(ValueError, match="max_per_image must be at least 1"):
        filter_patches(boxes, scores, threshold=0.5, max_per_image=0)
    with pytest.raises(ValueError, match="no boxes were proposed"):
        kept_fraction([torch.zeros(0, 4)], [torch.zeros(0, 4)])
