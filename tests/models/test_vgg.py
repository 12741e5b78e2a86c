"""VGG A to E against torchvision's VGG (layout, parameters, logits with its weights loaded),
the paper's table 1 and receptive fields, and the 3x3-stack arithmetic.

Full-size models are built on the meta device (shapes only) unless outputs are compared.
"""

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from labkit.models import (
    VGG_CONFIGS,
    conv_stack,
    count_layers,
    count_parameters,
    get_model,
    list_models,
    load_torchvision_weights,
    replace_head,
    vgg,
    vgg16,
    vgg_features,
)
from labkit.vgg.receptive_field import receptive_field_table

# torchvision's builder names, each with its config and batch norm
BUILDERS = {
    "vgg11": ("A", False),
    "vgg11_lrn": ("A-LRN", False),
    "vgg13": ("B", False),
    "vgg16_1x1": ("C", False),
    "vgg16": ("D", False),
    "vgg19": ("E", False),
    "vgg11_bn": ("A", True),
    "vgg13_bn": ("B", True),
    "vgg16_bn": ("D", True),
    "vgg19_bn": ("E", True),
}
TORCHVISION_NAMES = [name for name in BUILDERS if name in torchvision.models.vgg.__all__]

# torchvision's documented parameter counts (`VGG16_Weights.IMAGENET1K_V1.meta["num_params"]`)
TORCHVISION_PARAMS = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}


def _meta(build, **kwargs) -> nn.Module:
    """A full-size model with shapes but no storage: no time spent drawing 138M weights."""
    with torch.device("meta"):
        return build(**kwargs)


@pytest.fixture(scope="module")
def torchvision_vgg16() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.vgg16(weights=None).eval()


# --- the configurations and torchvision's layout ------------------------------------------------


def test_configs_are_table_1_and_torchvision_cfgs():
    for config in "ABDE":
        assert VGG_CONFIGS[config] == cfgs[config]
    assert VGG_CONFIGS["A-LRN"] == [64, "LRN", *cfgs["A"][1:]]
    # C is D with the third conv of blocks 3, 4 and 5 a 1x1 conv
    one_by_one = {8: (256, 1), 12: (512, 1), 16: (512, 1)}
    assert VGG_CONFIGS["C"] == [one_by_one.get(i, v) for i, v in enumerate(cfgs["D"])]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("config", ["A", "B", "D", "E"])
def test_features_are_torchvision_make_layers(config, batch_norm):
    theirs = _meta(make_layers, cfg=cfgs[config], batch_norm=batch_norm)
    ours = _meta(vgg_features, config=config, batch_norm=batch_norm)
    assert [repr(m) for m in ours] == [repr(m) for m in theirs]  # same layers at same indices


@pytest.mark.parametrize("batch_norm", [False, True])
def test_features_compute_what_torchvisions_do(batch_norm):
    torch.manual_seed(0)
    theirs = make_layers(cfgs["D"], batch_norm=batch_norm).eval()
    for m in theirs.modules():  # running statistics that differ from the defaults
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours = vgg_features("D", batch_norm=batch_norm).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_torchvision_state_dicts_load_strictly_and_counts_agree(name):
    theirs = _meta(getattr(torchvision.models, name))
    ours = _meta(get_model, name=name)
    load_torchvision_weights(ours, theirs.state_dict())
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    assert count_parameters(ours) == count_parameters(theirs) == TORCHVISION_PARAMS[name]


@pytest.mark.slow
def test_kaiming_init_draws_torchvisions_weights(torchvision_vgg16):
    torch.manual_seed(0)  # as the fixture: same modules, same order, same draws
    ours = vgg16()
    theirs = torchvision_vgg16.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in ours.state_dict().items())


@pytest.mark.slow
def test_vgg16_with_torchvision_weights_gives_torchvision_logits(torchvision_vgg16):
    torch.manual_seed(1)
    ours = vgg16().eval()
    x = torch.randn(2, 3, 64, 64)  # the adaptive pool takes any side >= 32 to 7 x 7
    with torch.no_grad():
        expected = torchvision_vgg16(x)
        assert not torch.allclose(ours(x), expected, atol=1e-3)
        load_torchvision_weights(ours, torchvision_vgg16.state_dict())
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


@pytest.mark.slow  # the full-size VGG16 fixture
def test_skip_classifier_head_keeps_a_new_head(torchvision_vgg16):
    ours = _meta(vgg16, num_classes=5).to_empty(device="cpu")  # no time spent on an init
    head = replace_head(ours, 5)  # the one part the loaded weights must not overwrite
    kept = {k: v.clone() for k, v in head.state_dict().items()}
    with pytest.raises(ValueError, match=r"classifier\.6\.weight .*skip_classifier_head=True"):
        load_torchvision_weights(ours, torchvision_vgg16.state_dict())
    load_torchvision_weights(ours, torchvision_vgg16.state_dict(), skip_classifier_head=True)
    assert ours.classifier[6] is head
    assert all(torch.equal(v, kept[k]) for k, v in head.state_dict().items())
    theirs = torchvision_vgg16.state_dict()
    assert all(
        torch.equal(v, theirs[k])
        for k, v in ours.state_dict().items()
        if not k.startswith("classifier.6.")
    )
    with torch.no_grad():
        assert ours.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 5)


# --- parameters, depth and layout as in the paper ---------------------------------------------


def test_parameter_counts_and_the_papers_millions():
    counts = {c: count_parameters(_meta(vgg, config=c)) for c in VGG_CONFIGS}
    assert counts["A"] == counts["A-LRN"] == TORCHVISION_PARAMS["vgg11"]  # LRN has no parameters
    assert counts["C"] == counts["B"] + (256 * 256 + 256) + 2 * (512 * 512 + 512)
    assert counts["D"] == TORCHVISION_PARAMS["vgg16"] == 138_357_544
    paper = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}  # table 2
    assert {c: round(n / 1e6) for c, n in counts.items()} == paper


def test_depth_kernels_and_lrn_position():
    depth = {"A": 8, "A-LRN": 8, "B": 10, "C": 13, "D": 13, "E": 16}  # conv layers
    for config, convs in depth.items():
        model = _meta(vgg, config=config)
        assert count_layers(model, linear=False) == convs
        assert count_layers(model) == convs + 3  # 11, 11, 13, 16, 16, 19 weight layers
    c_kernels = [m.kernel_size[0] for m in vgg_features("C", width=4) if isinstance(m, nn.Conv2d)]
    assert c_kernels == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]
    features = vgg_features("A-LRN", width=4)
    kinds = [type(m).__name__ for m in features[:4]]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    lrn = features[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in features) == 1


# Last receptive field at 224 x 224, by r += (k - 1) * jump per conv, r += jump per pool (then
# jump doubles): A 150; B 156; C 156 as B, its 1x1 convs add nothing; D 212; E 268.
LAST_FIELD = {"A": 150, "A-LRN": 150, "B": 156, "C": 156, "D": 212, "E": 268}


@pytest.mark.parametrize("config", list(VGG_CONFIGS))
def test_receptive_field_table_runs_on_every_config(config):
    table = receptive_field_table(vgg_features(config, width=4), 224)
    last = table.iloc[-1]
    assert (last["receptive field"], last["jump"], last["output size"]) == (
        LAST_FIELD[config],
        32,
        7,
    )
    fields = table["receptive field"].tolist()
    for i, kernel in enumerate(table["kernel"]):
        if kernel == 1:  # a 1x1 conv sees what its input saw
            assert fields[i] == fields[i - 1]
    assert (table["kernel"] == 1).sum() == (3 if config == "C" else 0)


# --- width, init, the head, errors ------------------------------------------------------------


def test_width_scales_every_channel_count():
    model = vgg("D", width=16, grid=2, hidden=64, num_classes=10).eval()
    channels = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert channels == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    assert (model.config, model.grid, model.out_channels) == ("D", 2, 128)
    assert model.classifier[0].in_features == 128 * 2 * 2
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize("config", list(VGG_CONFIGS))
def test_narrow_models_train_on_one_channel(config):
    torch.manual_seed(0)
    model = vgg(config, batch_norm=True, width=4, hidden=16, grid=1, num_classes=3, in_channels=1)
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_paper_init_draws_every_weight_with_std_0_1():
    torch.manual_seed(0)
    model = vgg("D", batch_norm=True, width=16, grid=2, hidden=512, init="paper")
    assert model.features[-4].weight.std().item() == pytest.approx(0.1, rel=0.02)  # 147k
    assert model.classifier[0].weight.std().item() == pytest.approx(0.1, rel=0.02)  # 262k
    assert model.classifier[0].weight.mean().item() == pytest.approx(0.0, abs=1e-3)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.count_nonzero(m.bias) == 0
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_kaiming_init_stds():
    torch.manual_seed(0)
    model = vgg("D", width=16, grid=2, hidden=512)
    conv = model.features[-3]  # 128 -> 128, fan_out 128 * 9
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.02)
    assert model.classifier[3].weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert torch.count_nonzero(model.classifier[3].bias) == 0


def test_he_init_keeps_a_narrow_classifiers_scale():
    torch.manual_seed(0)
    model = vgg("A", width=16, grid=3, hidden=256, init="he")
    first, second, last = model.classifier[0], model.classifier[3], model.classifier[6]
    assert first.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.03)
    assert second.weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.03)
    assert last.weight.std().item() == pytest.approx(0.01, rel=0.05)  # as torchvision's
    conv = model.features[-3]  # the convolutions as "kaiming"
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.03)
    # the point of it: a signal keeps its scale through the hidden layers, in eval mode
    x = torch.randn(64, 128 * 9)
    with torch.no_grad():
        he = model.classifier[:5].eval()(x).std().item()
        torchvision_like = vgg("A", width=16, grid=3, hidden=256).classifier[:5].eval()(x)
    assert he > 0.3 and torchvision_like.std().item() < he / 10


def test_replace_head():
    torch.manual_seed(0)
    model = vgg("A", width=4, hidden=2048, grid=1, num_classes=1000)
    head = replace_head(model, 10)
    assert model.classifier[6] is head
    assert (head.in_features, head.out_features) == (2048, 10)
    assert head.weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert torch.count_nonzero(head.bias) == 0
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        replace_head(model, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"config": "F"}, r"unknown VGG config 'F'; known configs: A, A-LRN, B, C, D, E"),
        ({"init": "xavier"}, "unknown init 'xavier'; use one of kaiming, he, paper"),
        ({"width": 0}, "width must be a positive int, got 0"),
        ({"width": 8.0}, "width must be a positive int, got 8.0"),
        ({"in_channels": -1}, "in_channels must be a positive int, got -1"),
        ({"grid": 0}, "grid must be a positive int, got 0"),
        ({"hidden": 0}, "hidden must be a positive int, got 0"),
        ({"num_classes": 0}, "num_classes must be a positive int, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vgg(**{"width": 4, "hidden": 8, "grid": 1, **kwargs})


def test_features_bad_arguments():
    with pytest.raises(ValueError, match="unknown VGG config 'vgg16'; known configs: A, A-LRN"):
        vgg_features("vgg16")
    with pytest.raises(ValueError, match="width must be a positive int, got -64"):
        vgg_features("D", width=-64)


def test_mismatched_weights_name_the_keys_and_the_fitting_model():
    vgg11_state = _meta(torchvision.models.vgg11).state_dict()
    with pytest.raises(
        ValueError,
        match=r"the state dict does not fit this VGG \(config 'D'.*missing: features\.2\.weight, "
        r"features\.2\.bias.*unexpected: features\.3\.weight.*Remedy: the weights fit vgg\('A'\)",
    ):
        load_torchvision_weights(_meta(vgg16), vgg11_state)
    narrow = vgg("D", batch_norm=True, width=8, hidden=32, grid=2, num_classes=3).state_dict()
    with pytest.raises(ValueError, match=r"mis-shaped: features\.0\.weight \(8, 3, 3, 3\) "):
        load_torchvision_weights(_meta(vgg16, batch_norm=True), narrow, skip_classifier_head=True)
    with pytest.raises(
        ValueError,
        match=r"fit vgg\('D', batch_norm=True, width=8, hidden=32, grid=2, num_classes=3\)$",
    ):
        load_torchvision_weights(_meta(vgg16, batch_norm=True), narrow)


def test_weights_from_a_file(tmp_path):
    torch.manual_seed(0)
    small = {"config": "B", "batch_norm": True, "width": 4, "hidden": 8, "grid": 1}
    source = vgg(**small, num_classes=3).eval()
    for m in source.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "weights.pth"
    state = source.state_dict()
    torch.save({k: v for k, v in state.items() if "num_batches" not in k}, path)  # pre-0.4 file
    target = vgg(**small, num_classes=3).eval()
    load_torchvision_weights(target, path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    with pytest.raises(ValueError, match=f"{path} does not fit this VGG"):
        load_torchvision_weights(vgg(**small, num_classes=4), path)


def test_builders_are_registered_with_their_config():
    assert set(BUILDERS) | {"vgg"} <= set(list_models())
    for name, (config, batch_norm) in BUILDERS.items():
        model = _meta(get_model, name=name, num_classes=7)
        assert model.config == config
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.features) == batch_norm
        assert model.classifier[6].out_features == 7
        assert model.labkit_builder == (name, {"num_classes": 7})
    with pytest.raises(TypeError):
        get_model("vgg16", config="E")


# --- three 3x3 convs against one 7x7 ----------------------------------------------------------


def test_conv_stack_parameters_and_receptive_field():
    c = 64
    assert count_parameters(conv_stack(c)) == 27 * c * c == 110_592
    assert count_parameters(conv_stack(c, kernel=7, num_layers=1)) == 49 * c * c == 200_704
    assert count_parameters(conv_stack(c, bias=True)) == 27 * c * c + 3 * c
    three = receptive_field_table(conv_stack(3), 32)
    one = receptive_field_table(conv_stack(3, kernel=7, num_layers=1), 32)
    assert three["receptive field"].tolist() == [3, 3, 5, 5, 7, 7]
    assert one["receptive field"].tolist() == [7, 7]
    assert three["output size"].iloc[-1] == one["output size"].iloc[-1] == 32
    assert sum(isinstance(m, nn.ReLU) for m in conv_stack(c)) == 3  # three non-linearities
    with pytest.raises(ValueError, match="kernel must be odd"):
        conv_stack(c, kernel=4)
