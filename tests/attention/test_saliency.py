"""Class activation maps, the object box from a saliency map, and localisation IoU."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from labkit.attention.saliency import (
    activation_maps,
    captured_output,
    class_activation_maps,
    localisation_iou,
    object_box,
    object_boxes,
    saliency_maps,
    scaled,
)
from labkit.bilinear.heads import GAPNet
from labkit.models.backbones import small_vgg_backbone


def _gapnet() -> GAPNet:
    torch.manual_seed(0)
    return GAPNet(small_vgg_backbone((4, 8, 8)), num_classes=5)


def test_the_mean_of_a_class_activation_map_plus_the_bias_is_the_logit() -> None:
    net = _gapnet().eval()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), captured_output(net.backbone.features[-1]) as outputs:
        logits = net(images)
    classes = torch.tensor([0, 3, 4])
    cams = class_activation_maps(outputs[-1], net.head.fc.weight, classes)
    assert cams.shape == (3, 8, 8)
    want = logits[torch.arange(3), classes] - net.head.fc.bias[classes]
    torch.testing.assert_close(cams.mean(dim=(1, 2)), want, rtol=1e-5, atol=1e-5)


def test_captured_output_removes_its_hook_even_on_error() -> None:
    layer = torch.nn.ReLU()
    with pytest.raises(RuntimeError), captured_output(layer) as outputs:
        layer(torch.ones(1))
        raise RuntimeError("boom")
    assert len(outputs) == 1 and not layer._forward_hooks
    layer(torch.ones(1))
    assert len(outputs) == 1  # nothing captured after the block


def test_saliency_maps_are_the_predicted_class_maps_upsampled_and_scaled() -> None:
    net = _gapnet().train()
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    found = saliency_maps(net, images, feature_layer=net.backbone.features[-1],
                          classifier=net.head.fc, batch_size=2)  # fmt: skip
    assert net.training  # the caller's mode comes back
    assert found.maps.shape == (5, 32, 32)
    assert float(found.maps.min()) >= 0.0 and float(found.maps.max()) <= 1.0
    net.eval()
    with torch.no_grad():
        logits = net(images)
    assert torch.equal(found.predicted, logits.argmax(dim=1))
    torch.testing.assert_close(found.probabilities, logits.softmax(dim=1))
    # the reference: the coarse map of the predicted class, bilinear, then min-max per image
    with torch.no_grad(), captured_output(net.backbone.features[-1]) as outputs:
        net(images)
    coarse = class_activation_maps(outputs[-1], net.head.fc.weight, found.predicted)
    fine = torch.nn.functional.interpolate(coarse[:, None], size=(32, 32), mode="bilinear")[:, 0]
    low, high = fine.amin(dim=(1, 2), keepdim=True), fine.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(found.maps, (fine - low) / (high - low), rtol=1e-5, atol=1e-6)


def test_saliency_maps_explains_a_layer_that_gave_nothing() -> None:
    net = _gapnet()
    with pytest.raises(ValueError, match="gave no"):
        saliency_maps(net, torch.randn(1, 3, 32, 32), feature_layer=torch.nn.ReLU(),
                      classifier=net.head.fc)  # fmt: skip


class _TwoWideLayers(torch.nn.Module):
    """Two convolutions of the classifier's width; global average pooling reads the second."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(6, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.conv1(x).relu()).relu().mean(dim=(2, 3)))


def test_saliency_maps_refuses_a_layer_of_the_same_width_that_pooling_does_not_read() -> None:
    net = _TwoWideLayers()
    images = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    for wrong in (net.conv1, net.conv2):  # conv2's output is read after a ReLU
        with pytest.raises(ValueError, match=r"(?s)conv[12].*global average pooling.*logits"):
            saliency_maps(net, images, feature_layer=wrong, classifier=net.fc)
    relu = torch.nn.ReLU()  # the layer pooling reads, as a module of its own
    net.forward = lambda x: net.fc(relu(net.conv2(net.conv1(x).relu())).mean(dim=(2, 3)))
    found = saliency_maps(net, images, feature_layer=relu, classifier=net.fc)
    assert found.maps.shape == (3, 8, 8)
    gapnet = _gapnet()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    for index in (11, 14):  # 8-channel convolutions below the last (ReLU after batch norm)
        with pytest.raises(ValueError, match=rf"backbone\.features\.{index}\b"):
            saliency_maps(gapnet, images, feature_layer=gapnet.backbone.features[index],
                          classifier=gapnet.head.fc)  # fmt: skip


def test_saliency_maps_names_a_layer_of_another_width() -> None:
    net = _gapnet()
    with pytest.raises(ValueError, match=r"backbone\.features\.0.*channels"):
        saliency_maps(net, torch.randn(1, 3, 32, 32), feature_layer=net.backbone.features[0],
                      classifier=net.head.fc)  # fmt: skip


def _bfs_box(grid: np.ndarray, threshold: float) -> list[float]:
    kept = grid >= threshold
    seen = np.zeros_like(kept)
    best: list[tuple[int, int]] = []
    for r, c in zip(*np.nonzero(kept), strict=True):
        if seen[r, c]:
            continue
        region, queue = [], collections.deque([(r, c)])
        seen[r, c] = True
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    inside = 0 <= ny < grid.shape[0] and 0 <= nx < grid.shape[1]
                    if inside and kept[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        if len(region) > len(best):
            best = region
    if not best:
        return [0.0, 0.0, float(grid.shape[1]), float(grid.shape[0])]
    ys, xs = zip(*best, strict=True)
    return [min(xs), min(ys), max(xs) + 1.0, max(ys) + 1.0]


def test_object_box_is_the_largest_eight_connected_region() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        grid = rng.random((13, 17)) ** 3
        assert object_box(torch.from_numpy(grid), 0.4).tolist() == _bfs_box(grid, 0.4)
    diagonal = np.eye(6)
    assert object_box(diagonal, 0.5).tolist() == [0.0, 0.0, 6.0, 6.0]
    assert object_box(np.zeros((4, 9)), 0.5).tolist() == [0.0, 0.0, 9.0, 4.0]


def test_object_boxes_stacks_and_rejects_bad_shapes() -> None:
    maps = torch.zeros(2, 6, 6)
    maps[0, 1:3, 2:5] = 1
    assert object_boxes(maps, 0.5).tolist() == [[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 6.0, 6.0]]
    assert object_boxes(torch.zeros(0, 4, 4), 0.5).shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        object_boxes(torch.zeros(6, 6), 0.5)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        object_box(torch.zeros(1, 6, 6), 0.5)


def test_localisation_iou_is_the_diagonal_of_box_iou() -> None:
    generator = torch.Generator().manual_seed(4)
    corner = torch.rand(30, 2, generator=generator) * 50
    boxes = torch.cat([corner, corner + torch.rand(30, 2, generator=generator) * 40 + 1], dim=1)
    found, true = boxes[:15], boxes[15:]
    torch.testing.assert_close(localisation_iou(found, true), box_iou(found, true).diagonal())
    assert localisation_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[2.0, 0, 4, 2]])) == 0
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        localisation_iou(found, true[:3])


def test_activation_maps_sum_the_channels_and_scaled_maps_span_zero_to_one() -> None:
    features = torch.rand(2, 5, 3, 4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(activation_maps(features), features.sum(dim=1))
    maps = scaled(activation_maps(features))
    assert maps.amin(dim=(1, 2)).tolist() == [0.0, 0.0]
    torch.testing.assert_close(maps.amax(dim=(1, 2)), torch.ones(2))
    assert scaled(torch.ones(1, 2, 2)).eq(0).all()  # a constant map: zeros, not NaN
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        activation_maps(torch.zeros(5, 3, 4))
