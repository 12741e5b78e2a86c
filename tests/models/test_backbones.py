"""The bird labs' backbones: VGG-16's last three ReLUs tapped, ImageNet weights read from a
file."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import vgg16

from labkit.models.backbones import small_vgg_backbone, vgg16_backbone


@pytest.mark.slow
def test_backbones_tap_their_last_three_relus() -> None:
    small = small_vgg_backbone((8, 16))
    maps = small(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 16)] * 3
    assert all((m >= 0).all() for m in maps)
    big = vgg16_backbone()
    reference = vgg16()
    reference.features.load_state_dict(big.features.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        maps = big(x)
        expected = reference.features[:30](x)
    assert [tuple(m.shape) for m in maps] == [(1, 512, 4, 4)] * 3
    torch.testing.assert_close(maps[-1], expected)


@pytest.mark.slow
def test_imagenet_weights_load_from_a_file(tmp_path) -> None:
    torch.manual_seed(3)
    source = vgg16()
    torch.save(source.state_dict(), tmp_path / "vgg16.pth")
    backbone = vgg16_backbone(str(tmp_path / "vgg16.pth"))
    torch.testing.assert_close(backbone.features[28].weight, source.features[28].weight)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth does not hold torchvision's VGG-16"):
        vgg16_backbone(str(tmp_path / "other.pth"))
