"""DenseNet: the channel table against a hand computation and against the built model."""

import pytest
import torch

from labkit.models import count_layers, count_parameters, densenet39, densenet_bc, densenet_channels

# The handout's (2, 5, 4, 6), k = 12, by hand: a block adds n * 12, a transition halves (floor).
HANDOUT_TABLE = [
    # stage, in, out, size, conv+fc layers
    ("stem", 3, 24, 32, 1),
    ("block1", 24, 48, 32, 4),  # 24 + 2 * 12
    ("transition1", 48, 24, 16, 1),
    ("block2", 24, 84, 16, 10),  # 24 + 5 * 12
    ("transition2", 84, 42, 8, 1),
    ("block3", 42, 90, 8, 8),  # 42 + 4 * 12
    ("transition3", 90, 45, 4, 1),  # floor(90 * 0.5)
    ("block4", 45, 117, 4, 12),  # 45 + 6 * 12
    ("head", 117, 10, 1, 1),
]


def test_channel_table_matches_hand_computation():
    table = densenet_channels((2, 5, 4, 6), growth_rate=12)
    got = table[["stage", "in_channels", "out_channels", "size", "layers"]]
    assert [tuple(row) for row in got.itertuples(index=False)] == HANDOUT_TABLE
    assert table["bottlenecks"].tolist() == [0, 2, 0, 5, 0, 4, 0, 6, 0]
    assert table["layers"].sum() == 39 == count_layers(densenet39())


def test_channel_table_options():
    table = densenet_channels((3, 3), growth_rate=4, compression=1.0, image_size=16)
    assert table["out_channels"].tolist() == [8, 20, 20, 32, 10]
    assert table["size"].tolist() == [16, 16, 8, 8, 1]
    assert densenet_channels((2, 2, 4, 16))["layers"].sum() == 53  # 52 convs + 1 fc


@pytest.mark.parametrize(
    ("block_config", "growth_rate", "compression", "size"),
    [((2, 5, 4, 6), 12, 0.5, 32), ((2, 2, 4, 16), 12, 0.5, 16), ((3, 1), 5, 0.7, 16)],
)
def test_model_follows_channel_table(block_config, growth_rate, compression, size):
    model = densenet_bc(block_config, growth_rate, compression).eval()
    table = densenet_channels(block_config, growth_rate, compression, image_size=size)
    shapes = {}
    for name, stage in model.features.named_children():
        stage.register_forward_hook(lambda m, i, o, name=name: shapes.update({name: o.shape}))
    with torch.no_grad():
        model(torch.randn(2, 3, size, size))
    for row in table.itertuples():
        if row.stage == "head":
            assert model.classifier.in_features == row.in_channels
            assert model.classifier.out_features == row.out_channels
        else:
            assert shapes[row.stage] == (2, row.out_channels, row.size, row.size)
        if row.stage.startswith("block"):
            block = getattr(model.features, row.stage)
            assert len(block) == row.bottlenecks
            assert block[0].layers.norm1.num_features == row.in_channels


def test_bottleneck_appends_k_channels_to_its_input():
    torch.manual_seed(0)
    bottleneck = densenet39().features.block2[1].eval()  # input 24 + 12 channels, k = 12
    assert bottleneck.layers.conv1.out_channels == 48  # 4k
    x = torch.randn(2, 36, 16, 16)
    with torch.no_grad():
        out = bottleneck(x)
        new = bottleneck.layers(x)
    assert out.shape == (2, 48, 16, 16)
    assert torch.equal(out[:, :36], x)
    assert torch.equal(out[:, 36:], new)


def test_parameters_match_hand_formula():
    # blocks (1, 1), k = 2, compression 0.5, 1 input channel, 3 classes
    def bottleneck(c, k):  # BN(c), conv1x1 c->4k, BN(4k), conv3x3 4k->k
        return 2 * c + c * 4 * k + 2 * 4 * k + 4 * k * k * 9

    stem = 1 * 4 * 9  # conv3x3 1 -> 2k = 4
    block1 = bottleneck(4, 2)  # 4 -> 6 channels
    transition = 2 * 6 + 6 * 3  # BN(6), conv1x1 6 -> 3
    block2 = bottleneck(3, 2)  # 3 -> 5 channels
    head = 2 * 5 + 5 * 3 + 3  # BN(5), Linear 5 -> 3
    expected = stem + block1 + transition + block2 + head
    model = densenet_bc((1, 1), growth_rate=2, num_classes=3, in_channels=1)
    assert count_parameters(model) == expected == 484


def test_builders():
    assert densenet_channels((2, 5, 4, 6)).equals(densenet_channels(block_config=[2, 5, 4, 6]))
    assert count_parameters(densenet39()) == count_parameters(densenet_bc())
    with pytest.raises(TypeError):
        densenet39(block_config=(1, 1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_config": ()}, r"block_config .* got \(\)"),
        ({"block_config": (2, 0, 4)}, r"block_config .* got \(2, 0, 4\)"),
        ({"growth_rate": 0}, "growth_rate must be a positive int, got 0"),
        ({"compression": 0.0}, r"compression must be in \(0, 1\], got 0.0"),
        ({"compression": 1.5}, r"compression must be in \(0, 1\], got 1.5"),
        ({"compression": 0.01}, "compression=0.01 leaves no channels after block1"),
        ({"num_classes": -1}, "num_classes must be a positive int, got -1"),
        ({"in_channels": 0}, "in_channels must be a positive int, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        densenet_bc(**kwargs)
    with pytest.raises(ValueError, match=match):
        densenet_channels(**{"block_config": (2, 5, 4, 6), **kwargs})


def test_image_too_small_for_table():
    with pytest.raises(ValueError, match="image_size=4 is too small for 4 blocks"):
        densenet_channels((2, 5, 4, 6), image_size=4)
