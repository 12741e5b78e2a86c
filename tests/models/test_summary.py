"""count_layers against published depths (torchvision's DenseNets, ResNet-18) and the handout."""

import pytest
import torchvision
from torch import nn

from labkit.models import (
    count_layers,
    count_parameters,
    densenet39,
    densenet_bc,
    resnext29_16x8d,
)


@pytest.mark.parametrize("depth", [121, 169, 201, 161])
def test_torchvision_densenet_depth(depth):
    model = getattr(torchvision.models, f"densenet{depth}")(weights=None)
    assert count_layers(model) == depth


def test_resnet18_counts_downsample_convs_unless_asked():
    model = torchvision.models.resnet18(weights=None)
    assert count_layers(model) == 21  # 17 convs + 3 downsample convs + 1 fc
    assert count_layers(model, shortcuts=False) == 18  # the paper's convention


def test_handout_depths():
    assert count_layers(densenet39()) == 39  # Question 1: 2 * 17 + 3 + 1 convs, 1 fc
    assert count_layers(densenet39(), conv=False) == 1
    assert count_layers(densenet39(), linear=False) == 38
    assert count_layers(densenet_bc(block_config=(2, 2, 4, 16)), linear=False) == 52
    model = resnext29_16x8d()
    assert count_layers(model) == 32  # the handout's name
    assert count_layers(model, shortcuts=False) == 29  # the paper's name, ResNeXt-29 (16x8d)


def test_count_layers_kinds_and_shortcut_names():
    model = nn.Sequential(
        nn.Conv1d(1, 2, 3),
        nn.ConvTranspose2d(2, 2, 3),
        nn.BatchNorm2d(2),
        nn.ModuleDict({"shortcut": nn.Conv2d(2, 2, 1), "downsample": nn.Conv3d(2, 2, 1)}),
        nn.ReLU(),
        nn.Linear(2, 2),
    )
    assert count_layers(model) == 5
    assert count_layers(model, shortcuts=False) == 3
    assert count_layers(model, conv=False, linear=False) == 0


def test_count_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert count_parameters(model) == (3 * 4 + 4) + 2 * 4 + (4 * 2 + 2)
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 2 * 4 + (4 * 2 + 2)
    assert count_parameters(model) == 34


def test_count_parameters_counts_shared_once():
    layer = nn.Linear(3, 3)
    assert count_parameters(nn.Sequential(layer, layer)) == 12
