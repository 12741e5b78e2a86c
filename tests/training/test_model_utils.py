"""Mode changes restore every flag; a model's device; batches moved whole."""

import pytest
import torch
from torch import nn

from labkit.training.model_utils import eval_mode, model_device, to_device, train_mode


def test_eval_mode_and_train_mode_restore_every_submodule_flag():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    model[1].eval()  # a frozen batch norm inside a training model
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]
    model.eval()
    with train_mode(model):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())


def test_model_device_and_a_model_without_parameters():
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    with pytest.raises(ValueError, match="ReLU has no parameters"):
        model_device(nn.ReLU())


def test_to_device_keeps_the_structure():
    batch = {"x": [torch.zeros(1), (torch.ones(2), "name")], "y": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved["x"][1], tuple) and moved["x"][1][1] == "name" and moved["y"] == 3
    assert torch.equal(moved["x"][1][0], torch.ones(2))
