"""The receptive-field table against real layers, the gradient of one unit, and VGG-16's
published values."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from labkit.vgg.receptive_field import (
    check_input_size,
    clip_field,
    layer_geometry,
    receptive_field_table,
    unit_field,
)

# VGG-16 after each conv and pool (Araujo et al., "Computing receptive fields of CNNs", 2019)
VGG16_FIELDS = [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]
VGG16_JUMPS = [1, 1, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32]


def _geometric(table):
    return table[table["kernel"].notna()]


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---------------------------------------------------------------- one unit's field


def _small_vgg() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2),
    )  # fmt: skip


def _strided() -> nn.Sequential:  # a ResNet-like stem, then a dilated convolution
    return nn.Sequential(
        nn.Conv2d(3, 4, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(4, 4, 3, dilation=2, padding=2), nn.AvgPool2d(2, padding=1),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("chain", "size", "solid"), [(_small_vgg, 21, True), (_strided, 37, False)]
)
def test_unit_field_is_the_gradient_support_of_border_and_inner_units(chain, size, solid) -> None:
    chain = chain()
    table = receptive_field_table(chain, size)
    labels = _geometric(table).index
    image = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    outputs, x = [], image
    for layer in _measurable(chain):
        x = layer(x)
        outputs.append(x[0, 0])
    for label, out in zip(labels, outputs, strict=True):
        n = out.shape[-1]
        for row, col in {(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1), (n // 2, 1)}:
            (grad,) = torch.autograd.grad(out[row, col], image, retain_graph=True)
            support = grad[0, 0] != 0  # (H, W)
            ys, xs = torch.nonzero(support, as_tuple=True)
            measured = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            x0, y0, x1, y1 = clip_field(unit_field(table, label, row, col), size, size)
            assert measured == (x0, y0, x1, y1), (label, row, col)
            if solid:  # without dilation the field has no holes
                assert int(support.sum()) == (x1 - x0) * (y1 - y0), (label, row, col)


def test_unit_field_by_hand_on_vgg16() -> None:
    vgg = torchvision.models.vgg
    features = vgg.make_layers(vgg.cfgs["D"])  # VGG-16's features, without its classifier
    table = receptive_field_table(features, 224)
    assert unit_field(table, "0", 0, 0) == (-1.0, -1.0, 2.0, 2.0)  # conv1_1: 3 px, one padding
    assert unit_field(table, 0, 0, 0) == (-1.0, -1.0, 2.0, 2.0)  # the same row by position
    assert unit_field(table, "2", 5, 9) == (7.0, 3.0, 12.0, 8.0)  # conv1_2: 5 px around (9.5, 5.5)
    # pool5: 212 px, jump 32; the padding of 13 convolutions moves the first edge to -90
    assert unit_field(table, "30", 0, 0) == (-90.0, -90.0, 122.0, 122.0)
    assert unit_field(table, "30", 3, 3) == (6.0, 6.0, 218.0, 218.0)  # centred on (112, 112)
    assert unit_field(table, "30", 6, 0) == (-90.0, 102.0, 122.0, 314.0)  # row is y, col is x
    assert clip_field(unit_field(table, "30", 6, 0), 224, 224) == (0.0, 102.0, 122.0, 224.0)
    assert unit_field(table, "1", 2, 2) == unit_field(table, "0", 2, 2)  # a ReLU passes it on


def test_unit_field_names_the_valid_units_and_layers() -> None:
    table = receptive_field_table(_small_vgg(), 21)  # last layer: 2 x 2
    with pytest.raises(
        ValueError, match=r"unit \(2, 0\) is outside layer 9's 2 x 2 output: .* 0 to 1"
    ):
        unit_field(table, "9", 2, 0)
    with pytest.raises(ValueError, match=r"unit \(0, -1\) is outside"):
        unit_field(table, "9", 0, -1)
    with pytest.raises(ValueError, match=r"unknown layer 'conv9': .*\(0, 1, 2, .*, 9\) or a pos"):
        unit_field(table, "conv9", 0, 0)
    with pytest.raises(ValueError, match="unknown layer 10: .* position from 0 to 9"):
        unit_field(table, 10, 0, 0)


def test_clip_field_keeps_what_lies_inside() -> None:
    assert clip_field((-3.0, 2.0, 5.0, 12.0), 10, 8) == (0.0, 2.0, 5.0, 10.0)
    assert clip_field((9.0, -4.0, 12.0, -1.0), 10, 8) == (8.0, 0.0, 8.0, 0.0)  # nothing inside


def test_check_input_size_accepts_sizes_of_the_same_geometry_only() -> None:
    table = receptive_field_table(_strided(), 37)
    check_input_size(table, 37, 37)
    check_input_size(table, 38, 38)  # the stride-2 stem: 19 units either way, same geometry
    with pytest.raises(ValueError, match=r"does not fit a 40 x 40 image: on it layer 0 gives 20 x"):
        check_input_size(table, 40, 40)
    with pytest.raises(ValueError, match="receptive_field_table\\(model, 40\\)"):
        check_input_size(table, 40, 40)
    with pytest.raises(ValueError, match="square inputs but the image is 37 x 38"):
        check_input_size(table, 37, 38)


def test_the_input_has_the_channels_the_first_convolution_reads() -> None:
    stack = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3))
    table = receptive_field_table(stack, 10)
    assert table["receptive field"].tolist() == [3, 3, 5]
    assert table["output size"].tolist() == [10, 10, 8]
