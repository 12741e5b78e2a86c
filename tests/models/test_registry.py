"""Every registered model builds, runs at 32x32 and 16x16, and trains; the registry's errors."""

import pytest
import torch
from torch import nn

from labkit.models import get_model, list_models, register_model, registry


def test_list_models_has_lab02_builders():
    assert {"densenet_bc", "densenet39", "resnext", "resnext29_16x8d"} <= set(list_models())
    assert list_models() == sorted(list_models())


def _width_argument(name: str) -> str:
    """The argument that sets a model's output width: classes, or an embedding's size."""
    return "embedding_size" if name.endswith("_embedding") else "num_classes"


def _small(name: str, size: int) -> tuple[dict, int]:
    """Arguments that keep a model small, and the input side to use: VGGs have 138M parameters
    at full size and five 2x2 pools, so they are built narrow and fed at least 32 x 32; the
    Res2Nets (25M to 48M) are built with 16 base channels, as the `res2net` default."""
    if name.startswith("vgg"):
        return {"width": 4, "hidden": 16, "grid": 1}, max(size, 32)
    if name.startswith("res2net"):
        return {"base_channels": 16}, size
    return {}, size


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size", [32, 16])
def test_output_shape(name, size):
    torch.manual_seed(0)
    kwargs, size = _small(name, size)
    with torch.no_grad():
        outputs = get_model(name, **kwargs, **{_width_argument(name): 7}).eval()(
            torch.randn(2, 3, size, size)
        )
    assert outputs.shape == (2, 7)
    assert torch.isfinite(outputs).all()


@pytest.mark.parametrize("name", list_models())
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    kwargs, size = _small(name, 16)
    model = get_model(name, **kwargs)
    model(torch.randn(2, 3, size, size)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_get_model_passes_kwargs(name):
    torch.manual_seed(0)
    kwargs, size = _small(name, 16)
    model = get_model(name, **kwargs, **{_width_argument(name): 5}, in_channels=1)
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 5)


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown model 'densenet1000'.*densenet39.*resnext"):
        get_model("densenet1000")


def test_register_model(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))  # undone after the test

    @register_model("tiny_linear")
    def tiny(num_classes: int = 10) -> nn.Module:
        return nn.Linear(4, num_classes)

    assert "tiny_linear" in list_models()
    assert get_model("tiny_linear", num_classes=3).out_features == 3
    with pytest.raises(ValueError, match="'tiny_linear' is already registered"):
        register_model("tiny_linear")(tiny)

    @register_model()
    def named_by_function() -> nn.Module:
        return nn.Identity()

    assert "named_by_function" in list_models()


def test_built_models_remember_their_builder_and_arguments() -> None:
    from labkit.models import densenet39, densenet_bc, resnext

    model = densenet_bc((2, 2, 4, 16), growth_rate=6)
    assert model.labkit_builder == (
        "densenet_bc",
        {"block_config": (2, 2, 4, 16), "growth_rate": 6},
    )
    assert densenet39(num_classes=3).labkit_builder == ("densenet39", {"num_classes": 3})
    name, arguments = resnext(cardinality=4, bottleneck_width=2).labkit_builder
    rebuilt = get_model(name, **arguments)
    assert [p.shape for p in rebuilt.parameters()] == [
        p.shape for p in resnext(cardinality=4, bottleneck_width=2).parameters()
    ]
