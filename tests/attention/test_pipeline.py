"""OPAM's steps over whole images (labkit.attention.pipeline): the layers class activation maps
read, on labkit's GAPNet and on a Res2Net; the saliency a locate call accepts."""

from __future__ import annotations

import pytest
import torch

from labkit.attention.pipeline import cam_layers, last_convolution, locate, new_classnet
from labkit.attention.saliency import captured_output, class_activation_maps
from labkit.models.backbones import small_vgg_backbone
from labkit.models.res2net import res2net


def test_a_res2net_serves_as_classnet_for_class_activation_maps() -> None:
    torch.manual_seed(0)
    model = res2net(num_classes=4).eval()  # the narrow Res2Net: 26w x 4s, base width 16
    feature_layer, classifier = cam_layers(model)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), captured_output(feature_layer) as maps:
        logits = model(images)
    cams = class_activation_maps(maps[-1], classifier.weight, logits.argmax(dim=1))
    picked = logits.max(dim=1).values - classifier.bias[logits.argmax(dim=1)]
    torch.testing.assert_close(cams.mean(dim=(1, 2)), picked, rtol=1e-4, atol=1e-5)
    assert isinstance(last_convolution(model), torch.nn.Conv2d)
    with pytest.raises(TypeError, match="no global-average-pool-plus-linear head"):
        cam_layers(torch.nn.Linear(2, 2))


def test_classnet_cam_layers_are_its_last_map_and_its_linear_layer() -> None:
    classnet = new_classnet(small_vgg_backbone((4, 8, 8)), 3)
    feature_layer, classifier = cam_layers(classnet)
    assert feature_layer is classnet.backbone.features[-1] and classifier is classnet.head.fc
    assert last_convolution(classnet).out_channels == 8
    with pytest.raises(TypeError, match="no convolution to cluster"):
        last_convolution(torch.nn.Linear(2, 2))


def test_locate_refuses_an_unknown_saliency() -> None:
    classnet = new_classnet(small_vgg_backbone((4, 8, 8)), 3)
    with pytest.raises(ValueError, match="unknown saliency 'gradcam'; choose one of"):
        locate(classnet, [], [], size=32, saliency="gradcam")
