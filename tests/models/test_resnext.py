"""ResNeXt: grouped convolutions, stage widths, shortcuts and a hand parameter count."""

import pytest
import torch
from torch import nn

from labkit.models import count_parameters, resnext, resnext29_16x8d


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_16x8d_grouped_convs_and_widths():
    model = resnext29_16x8d()
    stages = [model.layer1, model.layer2, model.layer3]
    for stage, width, out_channels in zip(stages, [128, 256, 512], [256, 512, 1024], strict=True):
        grouped = [c for c in _convs(stage) if c.groups > 1]
        assert len(grouped) == 3  # one per block
        assert all(c.groups == 16 for c in grouped)
        assert all(c.in_channels == c.out_channels == width for c in grouped)
        assert stage[-1].residual[-1][0].out_channels == out_channels
    assert model.fc.in_features == 1024


def test_stage_output_shapes():
    torch.manual_seed(0)
    model = resnext29_16x8d().eval()
    shapes = {}
    for name in ["stem", "layer1", "layer2", "layer3"]:
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.update({name: o.shape})
        )
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert shapes == {
        "stem": (2, 64, 32, 32),
        "layer1": (2, 256, 32, 32),
        "layer2": (2, 512, 16, 16),
        "layer3": (2, 1024, 8, 8),
    }


def test_projection_only_where_the_shape_changes():
    model = resnext29_16x8d()
    for stage in [model.layer1, model.layer2, model.layer3]:
        assert not isinstance(stage[0].shortcut, nn.Identity)
        assert all(isinstance(block.shortcut, nn.Identity) for block in stage[1:])
    assert model.layer1[0].shortcut[0].stride == (1, 1)
    assert model.layer2[0].shortcut[0].stride == (2, 2)


def test_parameters_match_hand_formula():
    # blocks (1, 1, 1), cardinality 2, width 1 (doubling: 1, 2, 4), 1 input channel, 3 classes
    def block(c_in, cardinality, w):  # every block here projects its shortcut
        width, out = cardinality * w, 2 * cardinality * w
        conv1 = c_in * width + 2 * width
        grouped = width * w * 9 + 2 * width  # each of the C groups: w -> w channels, 3x3
        conv3 = width * out + 2 * out
        shortcut = c_in * out + 2 * out
        return conv1 + grouped + conv3 + shortcut

    stem = 1 * 64 + 2 * 64  # conv1x1 1 -> 64, BN(64)
    stages = block(64, 2, 1) + block(4, 2, 2) + block(8, 2, 4)
    fc = 16 * 3 + 3
    model = resnext((1, 1, 1), cardinality=2, bottleneck_width=1, num_classes=3, in_channels=1)
    assert count_parameters(model) == stem + stages + fc == 1581


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_blocks": ()}, r"num_blocks must be 3 positive ints .* got \(\)"),
        ({"num_blocks": (3, 3)}, r"num_blocks must be 3 positive ints .* got \(3, 3\)"),
        ({"num_blocks": (3, 0, 3)}, r"got \(3, 0, 3\)"),
        ({"cardinality": 0}, "cardinality must be a positive int, got 0"),
        ({"bottleneck_width": -2}, "bottleneck_width must be a positive int, got -2"),
        ({"num_classes": 0}, "num_classes must be a positive int, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnext(**kwargs)
