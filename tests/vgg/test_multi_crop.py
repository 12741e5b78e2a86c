"""Multi-crop evaluation: crops where the paper takes them, posteriors averaged, batched."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn

from labkit.vgg.multi_crop import crops_per_image, grid_crops, multi_crop_scores


def _model(num_classes: int = 4) -> nn.Module:
    """Any crop size in, logits (B, num_classes) out; dropout shows whether eval mode is on."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(24, num_classes),
    ).double()  # fmt: skip


def test_grid_crops_are_evenly_spaced_corners_included():
    images = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).view(2, 3, 10, 10)
    crops = grid_crops(images, crop=4, grid=3)
    assert crops.shape == (2, 9, 3, 4, 4)
    expected = [images[..., t : t + 4, s : s + 4] for t in (0, 3, 6) for s in (0, 3, 6)]
    torch.testing.assert_close(crops, torch.stack(expected, dim=1))
    wide = torch.randn(1, 3, 7, 12)
    tops_lefts = [(t, s) for t in (0, 1, 2) for s in (0, 4, 7)]
    expected = [wide[..., t : t + 5, s : s + 5] for t, s in tops_lefts]
    torch.testing.assert_close(grid_crops(wide, 5, 3), torch.stack(expected, dim=1))


@pytest.mark.parametrize("size", [(10, 10), (11, 14), (9, 12)])
def test_one_crop_is_torchvision_centre_crop(size):
    images = torch.randn(2, 3, *size)
    torch.testing.assert_close(grid_crops(images, 6, grid=1)[:, 0], TF.center_crop(images, [6, 6]))


def test_one_crop_of_the_whole_image_gives_the_model_posteriors():
    model = _model().train()
    images = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    model.eval()
    plain = F.softmax(model(images), dim=1)
    flipped = F.softmax(model(images.flip(-1)), dim=1)
    model.train()
    scores = multi_crop_scores(model, images, scales=[12], crop=12, grid=1, flip=False)
    torch.testing.assert_close(scores, plain)
    scores = multi_crop_scores(model, images, scales=[12], crop=12, grid=1)
    torch.testing.assert_close(scores, (plain + flipped) / 2)
    assert all(m.training for m in model.modules())


def test_posteriors_average_every_crop_flip_and_scale():
    model = _model().eval()
    images = torch.randn(2, 3, 10, 15, dtype=torch.float64)
    scales, crop, grid = [8, 12], 6, 2
    expected = []
    for scale in scales:
        crops = grid_crops(TF.resize(images, [scale], antialias=True), crop, grid)
        crops = torch.cat([crops, crops.flip(-1)], dim=1)  # (2, 8, 3, 6, 6)
        expected.append(F.softmax(model(crops.flatten(0, 1)), dim=1).view(2, 8, -1))
    expected = torch.cat(expected, dim=1).mean(dim=1)
    scores = multi_crop_scores(model, images, scales=scales, crop=crop, grid=grid, batch_size=5)
    torch.testing.assert_close(scores, expected)
    torch.testing.assert_close(scores.sum(1), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_crops_go_through_the_model_in_batches(batch_size):
    model, calls = _model(), []
    model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    images = torch.randn(3, 3, 9, 11, dtype=torch.float64)
    multi_crop_scores(model, images, scales=[8, 9], crop=6, grid=3, batch_size=batch_size)
    total = 3 * crops_per_image(3, [8, 9], True)
    assert total == 108 and sum(calls) == total
    assert len(calls) == math.ceil(total / batch_size)
    assert all(n == batch_size for n in calls[:-1])


def test_crops_per_image_of_the_paper():
    assert crops_per_image(5, [256, 384, 512], flip=True) == 150
    assert crops_per_image(1, [224], flip=False) == 1


def test_bad_arguments_say_what_is_wrong():
    model, images = _model(), torch.randn(1, 3, 10, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="scale 5 is smaller than the crop 6"):
        multi_crop_scores(model, images, scales=[8, 5], crop=6)
    with pytest.raises(ValueError, match="at least one scale"):
        multi_crop_scores(model, images, scales=[], crop=6)
    with pytest.raises(ValueError, match="batch_size"):
        multi_crop_scores(model, images, scales=[8], crop=6, batch_size=0)
    with pytest.raises(ValueError, match="crop 11 is larger than the 10 x 10 images"):
        grid_crops(images, 11)
    with pytest.raises(ValueError, match=r"need images \(N, C, H, W\)"):
        grid_crops(images[0], 4)
