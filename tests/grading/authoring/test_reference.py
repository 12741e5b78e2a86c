"""load_weights: a student's weights into a reference layer, by kind and shape, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.densenet import _DenseLayer

from labkit.grading.authoring.reference import load_weights


def _student_layer(bias: bool = False) -> nn.Module:
    """A dense layer written another way: other names, a Sequential, convs registered first."""
    torch.manual_seed(1)
    layer = nn.Module()
    layer.convs = nn.Sequential(nn.Conv2d(20, 48, 1, bias=bias), nn.Conv2d(48, 12, 3, bias=False))
    layer.norms = nn.Sequential(nn.BatchNorm2d(20), nn.BatchNorm2d(48))
    for norm in layer.norms:
        nn.init.uniform_(norm.weight)
        nn.init.uniform_(norm.bias)
    return layer


def test_weights_land_in_the_matching_tensors_whatever_the_names():
    student = _student_layer()
    reference = _DenseLayer(20, 12, bn_size=4, drop_rate=0.0)
    state = {k: v.numpy() for k, v in student.state_dict().items()}  # NumPy works too
    load_weights(reference, state, "DenseLayer(20, 12)")
    assert torch.equal(reference.conv1.weight, student.convs[0].weight)
    assert torch.equal(reference.conv2.weight, student.convs[1].weight)
    assert torch.equal(reference.norm1.bias, student.norms[0].bias)
    assert torch.equal(reference.norm2.weight, student.norms[1].weight)


def test_ties_of_one_shape_follow_the_students_order():
    student = nn.Sequential(nn.BatchNorm1d(4), nn.BatchNorm1d(4))
    nn.init.constant_(student[0].weight, 2.0)
    nn.init.constant_(student[1].weight, 3.0)
    reference = nn.Sequential(nn.BatchNorm1d(4), nn.BatchNorm1d(4))
    load_weights(reference, student.state_dict(), "two norms")
    assert reference[0].weight.tolist() == [2.0] * 4 and reference[1].weight.tolist() == [3.0] * 4


def test_a_missing_or_extra_tensor_is_named():
    reference = _DenseLayer(20, 12, bn_size=4, drop_rate=0.0)
    with pytest.raises(
        AssertionError, match=r"lacks a convolution of weight \(48, 20, 1, 1\) without"
    ):
        load_weights(reference, _student_layer(bias=True).state_dict(), "DenseLayer(20, 12)")
    narrow = nn.Sequential(nn.BatchNorm2d(20), nn.Conv2d(20, 32, 1, bias=False))
    with pytest.raises(AssertionError, match=r"which the reference has \(conv1\)"):
        load_weights(reference, narrow.state_dict(), "DenseLayer(20, 12)")
    after = nn.Sequential(nn.Conv2d(20, 48, 1, bias=False), nn.BatchNorm2d(48))  # BN after conv
    with pytest.raises(AssertionError, match=r"lacks a batch norm over 20 channels"):
        load_weights(reference, after.state_dict(), "DenseLayer(20, 12)")
    extra = nn.Sequential(*_student_layer().children(), nn.Conv2d(12, 12, 1))
    with pytest.raises(
        AssertionError,
        match=r"does not: 2 \(a convolution of weight \(12, 12, 1, 1\) with bias",
    ):
        load_weights(reference, extra.state_dict(), "DenseLayer(20, 12)")
    with pytest.raises(AssertionError, match="expected its state_dict"):
        load_weights(reference, np.zeros(3), "DenseLayer(20, 12)")
