"""Models by family; every public builder is registered, so `get_model(name)` builds any."""

from labkit.models.densenet import DenseNet, densenet39, densenet_bc, densenet_channels
from labkit.models.registry import get_model, list_models, register_model
from labkit.models.resnet import ResNetEmbedding, resnet18_embedding
from labkit.models.resnext import ResNeXt, resnext, resnext29_16x8d
from labkit.models.summary import count_layers, count_parameters

__all__ = [
    "DenseNet",
    "ResNeXt",
    "ResNetEmbedding",
    "count_layers",
    "count_parameters",
    "densenet39",
    "densenet_bc",
    "densenet_channels",
    "get_model",
    "list_models",
    "register_model",
    "resnet18_embedding",
    "resnext",
    "resnext29_16x8d",
]
