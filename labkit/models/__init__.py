"""Models by family; every classifier builder is registered, so `get_model(name)` builds any.

Backbones (`backbones`) return feature maps and are not registered; the heads and nets built on
them live in their topic wings (`labkit.bilinear`, `labkit.attention.part_alignment`). ImageNet
weights are data (`weights`: the file and where it is looked for, its preprocessing, its
classes)."""

from labkit.models.backbones import TapBackbone, small_vgg_backbone, vgg16_backbone
from labkit.models.densenet import DenseNet, densenet39, densenet_bc, densenet_channels
from labkit.models.registry import get_model, list_models, register_model
from labkit.models.res2net import (
    Res2Net,
    res2net,
    res2net50_14w_8s,
    res2net50_26w_4s,
    res2net50_26w_6s,
    res2net50_26w_8s,
    res2net50_48w_2s,
    res2net101_26w_4s,
    split_receptive_fields,
)
from labkit.models.resnet import ResNetEmbedding, resnet18_embedding
from labkit.models.resnext import ResNeXt, resnext, resnext29_16x8d
from labkit.models.summary import count_layers, count_parameters
from labkit.models.vgg import (
    VGG,
    VGG_CONFIGS,
    conv_stack,
    load_torchvision_weights,
    replace_head,
    vgg,
    vgg11,
    vgg11_bn,
    vgg11_lrn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_1x1,
    vgg16_bn,
    vgg19,
    vgg19_bn,
    vgg_features,
)
from labkit.models.weights import VGG16_WEIGHTS, WEIGHTS, Weights, vgg_weights

__all__ = [
    "TapBackbone",
    "small_vgg_backbone",
    "vgg16_backbone",
    "DenseNet",
    "Res2Net",
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
    "res2net",
    "res2net50_14w_8s",
    "res2net50_26w_4s",
    "res2net50_26w_6s",
    "res2net50_26w_8s",
    "res2net50_48w_2s",
    "res2net101_26w_4s",
    "resnet18_embedding",
    "resnext",
    "resnext29_16x8d",
    "split_receptive_fields",
    "VGG",
    "VGG_CONFIGS",
    "conv_stack",
    "load_torchvision_weights",
    "replace_head",
    "vgg",
    "vgg11",
    "vgg11_bn",
    "vgg11_lrn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_1x1",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vgg_features",
    "VGG16_WEIGHTS",
    "WEIGHTS",
    "Weights",
    "vgg_weights",
]
