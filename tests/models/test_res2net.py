"""Res2Net: the official parameter counts and state-dict layout, the block against the paper's
equations and against torchvision's Bottleneck (scale 1), `features` for CAM, receptive fields
measured by gradients, and the argument errors."""

import hashlib
import time

import pytest
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from labkit.models import get_model, res2net, res2net50_26w_4s, split_receptive_fields
from labkit.models.res2net import Res2Net, _Bottle2neck

# Parameter counts of the official networks, from `sum(p.numel() for p in m.parameters())` over
# timm 1.0.31's `timm.create_model(name)` and over the official code (github
# Res2Net/Res2Net-PretrainedModels, res2net.py), which agree. The paper reports 25.7M for
# res2net50_26w_4s.
OFFICIAL_PARAMETERS = {
    "res2net50_26w_4s": 25_699_120,
    "res2net50_48w_2s": 25_287_304,
    "res2net50_14w_8s": 25_059_816,
    "res2net50_26w_6s": 37_051_448,
    "res2net50_26w_8s": 48_403_776,
    "res2net101_26w_4s": 45_206_688,
}
# SHA-256 of "key:shape;key:shape;..." over the official res2net50_26w_4s().state_dict() (512
# entries, in order), computed from the official res2net.py: equal keys and shapes are what
# `load_state_dict(strict=True)` needs. (In /tmp, the official and timm state dicts of all six
# networks, random BN statistics included, loaded strictly and gave bit-identical logits.)
OFFICIAL_LAYOUT_SHA256 = "88f01c3e72a3ae3603c6965632224910bece297ae6a506642eb34f524e1837c0"


def _layout(model: nn.Module) -> str:
    return ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_parameter_count_is_official(name):
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = get_model(name)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETERS[name]


def test_state_dict_layout_is_official():
    with torch.device("meta"):
        model = res2net50_26w_4s()
    assert len(model.state_dict()) == 512
    assert hashlib.sha256(_layout(model).encode()).hexdigest() == OFFICIAL_LAYOUT_SHA256


def test_scale_one_has_resnet50_parameters():
    with torch.device("meta"):
        model = res2net((3, 4, 6, 3), base_width=64, scale=1, base_channels=64)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision resnet50


def _small_model(**kwargs) -> Res2Net:
    torch.manual_seed(0)
    return res2net(num_classes=10, **kwargs).eval()


def test_small_model_shapes_and_features_give_logits():
    model = _small_model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features, logits = model.features(x), model(x)
    assert model.out_channels == model.fc.in_features == 512
    assert features.shape == (2, 512, 2, 2)
    assert logits.shape == (2, 10)
    assert isinstance(model.fc, nn.Linear)
    assert torch.equal(logits, model.fc(features.mean((2, 3))))  # what CAM relies on


def test_small_model_is_fast_on_a_cpu():
    model = _small_model()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        model(x)
    assert time.perf_counter() - start < 1.0  # about 5 ms on one core


def test_widths_and_stem_channels():
    model = _small_model(num_blocks=(1, 2, 1, 1), base_width=48, scale=2, stem_channels=8)
    assert model.conv1.out_channels == 8
    assert [s[0].width for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [
        12, 24, 48, 96  # floor(planes * 48 / 64) for planes 16, 32, 64, 128
    ]  # fmt: skip
    assert len(model.layer2) == 2 and len(model.layer1[0].convs) == 1
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 47)).shape == (1, 10)


def _paper_block(block: _Bottle2neck, x: torch.Tensor) -> torch.Tensor:
    """The block written from the paper's equations, numbering the groups as the paper does:
    x_1 is the code's last group, x_2 .. x_s its groups 0 .. s-2, K_i = convs[i - 2]."""
    relu = torch.relu
    groups = torch.split(relu(block.bn1(block.conv1(x))), block.width, dim=1)
    xs = [groups[-1], *groups[:-1]]  # paper's x_1 .. x_s
    K = [None, None] + [  # noqa: N806 (the paper's K_i)
        lambda t, c=c, b=b: relu(b(c(t))) for c, b in zip(block.convs, block.bns, strict=True)
    ]
    ys = [block.pool(xs[0]) if block.stage else xs[0], K[2](xs[1])]
    for i in range(3, block.scale + 1):
        ys.append(K[i](xs[i - 1] if block.stage else xs[i - 1] + ys[-1]))
    out = block.bn3(block.conv3(torch.cat([*ys[1:], ys[0]], dim=1)))  # the code's channel order
    shortcut = x if block.downsample is None else block.downsample(x)
    return relu(out + shortcut)


@pytest.mark.parametrize("stage", [False, True])
@pytest.mark.parametrize("scale", [2, 4, 5])
def test_block_follows_the_papers_equations(scale, stage):
    torch.manual_seed(0)
    model = res2net(num_blocks=(2, 1, 1, 1), scale=scale).eval()
    block = model.layer2[0] if stage else model.layer1[1]  # stage type, stride 2 / normal type
    assert block.stage is stage
    for m in block.modules():  # BN statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, block.conv1.in_channels, 8, 8, dtype=torch.float64)
    block.double()
    with torch.no_grad():
        torch.testing.assert_close(block(x), _paper_block(block, x), rtol=1e-12, atol=1e-12)


def test_identity_group_passes_unchanged():
    """y_1 = x_1: in a normal block conv3 receives the last group of relu(bn1(conv1(x))) as is."""
    model = _small_model(num_blocks=(2, 1, 1, 1))
    block = model.layer1[1]
    seen: dict[str, torch.Tensor] = {}
    handles = [
        block.bn1.register_forward_hook(lambda m, i, o: seen.update(bn1=o.clone())),  # before ReLU
        block.conv3.register_forward_pre_hook(lambda m, i: seen.update(conv3=i[0].clone())),
    ]
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, 64, 64))
    finally:
        for handle in handles:
            handle.remove()
    w = block.width
    assert torch.equal(seen["conv3"][:, -w:], torch.relu(seen["bn1"])[:, -w:])
    assert not torch.equal(seen["conv3"][:, :w], torch.relu(seen["bn1"])[:, :w])


def test_scale_one_block_is_torchvision_bottleneck():
    torch.manual_seed(0)
    model = res2net(num_blocks=(1, 1, 1, 1), base_width=64, scale=1).eval()
    block = model.layer1[0]
    reference = Bottleneck(16, 16, downsample=block.downsample).eval()  # width 16, out 64
    names = {"convs.0": "conv2", "bns.0": "bn2"}
    state = {}
    for key, value in block.state_dict().items():
        prefix = ".".join(key.split(".")[:2])
        state[key.replace(prefix, names[prefix]) if prefix in names else key] = value
    reference.load_state_dict(state, strict=True)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), reference(x))


@pytest.mark.parametrize("scale", [1, 2, 4, 6])
def test_split_receptive_fields_formula(scale):
    assert split_receptive_fields(scale) == ([3] if scale == 1 else list(range(1, 2 * scale, 2)))
    assert split_receptive_fields(scale, stage=True) == [3] * scale
    assert split_receptive_fields(4) == [1, 3, 5, 7]


def _measured_receptive_fields(block: _Bottle2neck, size: int = 17) -> list[int]:
    """Width of the input region that the centre pixel of each output group depends on, in the
    paper's order y_1 .. y_s (gradients of the linearised block: ReLUs removed)."""
    block.relu = nn.Identity()  # keeps every path alive; RFs do not depend on the nonlinearity
    seen: list[torch.Tensor] = []
    block.conv3.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    x = torch.randn(1, block.conv1.in_channels, size, size, dtype=torch.float64)
    x.requires_grad_(True)
    block(x)
    groups = torch.split(seen[0], block.width, dim=1)
    groups = groups if block.scale == 1 else [groups[-1], *groups[:-1]]  # paper order
    fields = []
    for group in groups:
        (grad,) = torch.autograd.grad(group[0, :, size // 2, size // 2].sum(), x, retain_graph=True)
        columns = grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
        fields.append(int(columns.max() - columns.min() + 1))
    return fields


@pytest.mark.parametrize("stage", [False, True])
@pytest.mark.parametrize("scale", [1, 3, 4])
def test_split_receptive_fields_match_the_block(scale, stage):
    torch.manual_seed(0)
    model = res2net(num_blocks=(2, 1, 1, 1), scale=scale).double().eval()
    block = model.layer1[0] if stage else model.layer1[1]  # both stride 1
    assert _measured_receptive_fields(block) == split_receptive_fields(scale, stage=stage)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": 0}, r"scale .* >= 1, got 0; use 1 for a plain ResNet"),
        ({"scale": 2.5}, r"scale .* got 2\.5"),
        ({"base_channels": 2}, r"base_channels \* base_width .* 2 \* 26 = 52; raise base_width"),
        ({"num_blocks": (1, 1, 1)}, r"num_blocks must be 4 positive ints"),
        ({"num_classes": 0}, r"num_classes must be a positive int, got 0"),
        ({"stem_channels": -1}, r"stem_channels must be a positive int, got -1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        res2net(**kwargs)


@pytest.mark.parametrize("scale", [0, -1, 1.0, True])
def test_split_receptive_fields_rejects_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        split_receptive_fields(scale)


def test_builder_is_registered_and_remembered():
    model = res2net(scale=2, num_classes=3)
    assert model.labkit_builder == ("res2net", {"scale": 2, "num_classes": 3})
