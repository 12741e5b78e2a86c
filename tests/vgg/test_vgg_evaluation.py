"""Dense against multi-crop evaluation's bookkeeping (labkit.vgg.evaluation): the paper's test
scales for a training scale, and the images a network is scored on."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from labkit.vgg.evaluation import evaluation_scales, evaluation_set, trained_scale


def test_test_scales_follow_the_paper() -> None:
    # section 4.2: S - 32, S, S + 32 for a fixed S; S_min, the middle, S_max for a jittered one
    assert evaluation_scales(256, 256, 224) == (256, (224, 256, 288))
    assert evaluation_scales(384, 384, 224) == (384, (352, 384, 416))
    assert evaluation_scales(256, 512, 224) == (384, (256, 384, 512))
    assert evaluation_scales(112, 112, 96) == (112, (112, 144))  # no 96 crop fits 80
    assert trained_scale(128, 128) == "S = 128"
    assert trained_scale(96, 128) == "S in [96, 128]"


def test_an_evaluation_set_spreads_its_images_and_says_what_it_left_out() -> None:
    images = torch.arange(10.0)[:, None, None, None].expand(10, 3, 4, 4)
    test = TensorDataset(images, torch.arange(10) % 2)
    scored = evaluation_set("net", nn.Identity(), test, ("a", "b"), (64, 64), 64, count=4,
                            what="a net on ten images")  # fmt: skip
    assert scored.images[:, 0, 0, 0].tolist() == [0.0, 2.0, 5.0, 7.0]  # spread over the ten
    assert scored.labels.tolist() == [0, 0, 1, 1] and scored.class_names == ("a", "b")
    assert (scored.single, scored.scales, scored.trained_at) == (64, (64, 96), "S = 64")
    assert scored.line == (
        "scored: a net on ten images: 4 images; trained at S = 64, so tested at Q = 64 alone "
        "and at Q = 32, 64, 96 together (32 left out: below the 64-pixel crop)"
    )
    assert len(evaluation_set("net", nn.Identity(), test, ("a", "b"), (64, 96), 64).images) == 10
