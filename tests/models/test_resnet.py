"""ResNet-18 embedding: torchvision's blocks, embedding norms, layer count, sizes, gradients."""

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from labkit.models import ResNetEmbedding, count_layers, get_model, resnet18_embedding


@pytest.fixture(scope="module")
def model() -> ResNetEmbedding:
    torch.manual_seed(0)
    return resnet18_embedding()


@pytest.mark.parametrize("size", [32, 16])
def test_embeddings_have_norm_alpha(model, size):
    with torch.no_grad():
        embeddings = model.eval()(torch.randn(3, 3, size, size))
    assert embeddings.shape == (3, 128)
    assert torch.allclose(embeddings.norm(dim=1), torch.full((3,), 10.0))


def test_embedding_size_and_alpha_are_arguments():
    torch.manual_seed(0)
    small = resnet18_embedding(embedding_size=16, alpha=2.0, in_channels=1).eval()
    with torch.no_grad():
        embeddings = small(torch.randn(2, 1, 16, 16))
    assert embeddings.shape == (2, 16)
    assert torch.allclose(embeddings.norm(dim=1), torch.full((2,), 2.0))


def test_width_scales_every_stage_and_keeps_the_layers(model):
    torch.manual_seed(0)
    narrow = resnet18_embedding(width=32).eval()
    stages = [narrow.stem[0], narrow.layer1[0].conv1, narrow.layer2[0].conv1]
    assert [conv.out_channels for conv in stages] == [32, 32, 64]
    assert narrow.layer4[1].conv2.out_channels == 256 and narrow.fc.in_features == 256
    assert count_layers(narrow) == count_layers(model) == 21
    # a 3x3 convolution's weights scale with width squared: about a quarter of the parameters
    ratio = sum(p.numel() for p in narrow.parameters()) / sum(p.numel() for p in model.parameters())
    assert 0.24 < ratio < 0.27
    with torch.no_grad():
        assert narrow(torch.randn(2, 3, 16, 16)).shape == (2, 128)


def test_layer_count_is_18_plus_3_shortcuts(model):
    assert count_layers(model) == 21
    assert count_layers(model, shortcuts=False) == 18


def test_reuses_torchvision_basic_blocks_with_32x32_stem(model):
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert all(
        len(stage) == 2 and all(isinstance(b, BasicBlock) for b in stage) for stage in stages
    )
    stem = model.stem[0]
    assert (stem.kernel_size, stem.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.layer1[0].downsample is None  # 64 -> 64, stride 1: identity shortcut
    for stage in stages[1:]:
        assert stage[0].downsample[0].stride == (2, 2)
        assert stage[1].downsample is None


def test_stage_output_shapes(model):
    shapes = {}
    handles = [
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.update({name: o.shape})
        )
        for name in ["stem", "layer1", "layer2", "layer3", "layer4"]
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.randn(1, 3, 32, 32))
    finally:
        for handle in handles:
            handle.remove()
    assert shapes == {
        "stem": (1, 64, 32, 32),
        "layer1": (1, 64, 32, 32),
        "layer2": (1, 128, 16, 16),
        "layer3": (1, 256, 8, 8),
        "layer4": (1, 512, 4, 4),
    }


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = resnet18_embedding(embedding_size=8)
    embeddings = model(torch.randn(4, 3, 16, 16))
    (embeddings[:2] - embeddings[2:]).pow(2).sum().backward()  # a distance, as a triplet loss
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.fc.weight.grad.abs().sum() > 0


def test_registered_and_rebuilt_from_its_record():
    model = resnet18_embedding(embedding_size=32, alpha=5.0)
    assert model.labkit_builder == ("resnet18_embedding", {"embedding_size": 32, "alpha": 5.0})
    name, arguments = model.labkit_builder
    rebuilt = get_model(name, **arguments)
    assert (rebuilt.embedding_size, rebuilt.alpha) == (32, 5.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embedding_size": 0}, "embedding_size must be a positive int, got 0"),
        ({"alpha": 0.0}, r"alpha \(the embeddings' norm\) must be a positive number, got 0.0"),
        ({"alpha": -1}, "alpha .* got -1"),
        ({"alpha": float("nan")}, "alpha .* got nan"),
        ({"in_channels": 0}, "in_channels must be a positive int, got 0"),
        ({"width": 0}, "width must be a positive int, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnet18_embedding(**kwargs)


def test_bad_num_blocks():
    with pytest.raises(ValueError, match=r"num_blocks must be 4 positive ints .* got \(2, 2\)"):
        ResNetEmbedding(num_blocks=(2, 2))
