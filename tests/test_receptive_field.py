"""The receptive-field table against real layers, the gradient of one unit, and VGG-16's
published values."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from labkit.receptive_field import layer_geometry, receptive_field_table

# VGG-16 after each conv and pool (Araujo et al., "Computing receptive fields of CNNs", 2019)
VGG16_FIELDS = [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
VGG16_JUMPS = [1, 1, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32]


def _geometric(table):
    return table[table["kernel"].notna()]


def test_vgg16_matches_the_published_fields_and_jumps() -> None:
    table = _geometric(receptive_field_table(torchvision.models.vgg16().features, 224))
    assert table["receptive field"].tolist() == VGG16_FIELDS
    assert table["jump"].tolist() == VGG16_JUMPS
    assert table["output size"].iloc[-1] == 7  # pool5: 7 x 7, what the classifier reads


@pytest.mark.parametrize("size", [224, 100, 61])
def test_output_sizes_are_the_layers_own(size: int) -> None:
    chain = nn.Sequential(
        nn.Conv2d(3, 4, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(4, 4, 3, dilation=2, padding=1), nn.BatchNorm2d(4), nn.AvgPool2d(2),
        nn.Conv2d(4, 4, 5, stride=3),
    )  # fmt: skip
    sizes = []
    for layer in chain:
        layer.register_forward_hook(lambda m, a, out: sizes.append(out.shape[-1]))
    chain.eval()(torch.zeros(1, 3, size, size))
    expected = list(sizes)  # the table's own forward pass would add to `sizes`
    assert receptive_field_table(chain, size)["output size"].tolist() == expected


def _measurable(chain: nn.Sequential) -> nn.Sequential:
    """The same geometry with every weight 1, no bias, and linear layers only (max-pool as
    average pool, activations and batch norm as identity): a unit's gradient is then positive
    exactly on its receptive field."""
    layers = []
    for layer in chain:
        geometry = layer_geometry(layer)
        if geometry is None:
            continue
        kernel, stride, padding, dilation = geometry
        if isinstance(layer, nn.Conv2d):
            conv = nn.Conv2d(1, 1, kernel, stride, padding, dilation, bias=False)
            nn.init.ones_(conv.weight)
            layers.append(conv)
        else:
            layers.append(nn.AvgPool2d(kernel, stride, padding, count_include_pad=True))
    return nn.Sequential(*layers).double()


def _support_agrees(chain: nn.Sequential, size: int) -> None:
    table = _geometric(receptive_field_table(chain, size))
    net = _measurable(chain)
    image = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    outputs, x = [], image
    for layer in net:
        x = layer(x)
        outputs.append(x)
    for (name, row), out in zip(table.iterrows(), outputs, strict=True):
        unit = out.shape[-1] // 2  # the centre unit, along both axes
        (grad,) = torch.autograd.grad(out[0, 0, unit, unit], image, retain_graph=True)
        rows = torch.nonzero(grad[0, 0].abs().sum(dim=1) > 0).flatten()
        centre = row["first centre"] + unit * row["jump"]
        left, right = centre - row["receptive field"] / 2, centre + row["receptive field"] / 2
        expected = (max(0, int(left)), min(size, int(right)) - 1)  # pixels, clipped at the border
        assert (int(rows.min()), int(rows.max())) == expected, name


def test_the_field_is_where_one_unit_gets_its_gradient_on_every_layer_of_vgg16() -> None:
    _support_agrees(torchvision.models.vgg16().features, 224)


def test_the_field_is_where_one_unit_gets_its_gradient_with_dilation_and_strides() -> None:
    chain = nn.Sequential(
        nn.Conv2d(3, 4, 5, stride=2, padding=1), nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 3, dilation=3),
        nn.AvgPool2d(2, padding=1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, stride=2, padding=1),
    )  # fmt: skip
    _support_agrees(chain, 95)


def test_a_model_that_is_not_a_chain_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ResNet is not a chain of layers: .* does not read"):
        receptive_field_table(torchvision.models.resnet18(), 64)
    with pytest.raises(ValueError, match="VGG is not a chain of layers: classifier.0 does not"):
        receptive_field_table(torchvision.models.vgg11(), 64)  # flattened by a function call
    with pytest.raises(ValueError, match="no receptive-field rule for AdaptiveAvgPool2d"):
        receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2)), 16)


def test_bad_layers_and_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="only square kernels"):
        receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, (3, 5))), 32)
    with pytest.raises(ValueError, match="ceil_mode=True is not supported"):
        receptive_field_table(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), 32)
    with pytest.raises(ValueError, match="Sequential cannot run on a 6 x 6 input"):
        receptive_field_table(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 5)), 6)


def test_the_table_leaves_the_model_as_it_was() -> None:
    chain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    before = copy.deepcopy(chain.state_dict())
    receptive_field_table(chain, 16)
    assert chain.training
    assert all(torch.equal(before[k], v) for k, v in chain.state_dict().items())
