"""Tests for labkit.training.memory.step_memory against hand-computed byte counts."""

from __future__ import annotations

import torch
from torch import nn

from labkit.training.memory import step_memory


def test_single_linear_saves_only_its_input():
    model = nn.Linear(10, 5)
    inputs, targets = torch.randn(4, 10), torch.randint(0, 5, (4,))
    result = step_memory(model, inputs, targets)
    assert result["params"] == (10 * 5 + 5) * 4  # float32 weight and bias
    assert result["grads"] == result["params"]
    # addmm keeps the (4, 10) input for the weight's gradient; the weight itself is a parameter
    assert result["activations"] == 4 * 10 * 4
    assert result["total"] == result["params"] + result["grads"] + result["activations"]
    assert result["peak_cuda"] is None


def test_shared_tensors_count_once():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(10, 5), nn.Linear(10, 5)

        def forward(self, x):
            return self.a(x) + self.b(x)  # both layers save the same input

    result = step_memory(Twice(), torch.randn(4, 10), torch.randint(0, 5, (4,)))
    assert result["activations"] == 4 * 10 * 4


def test_deeper_model_saves_more():
    inputs, targets = torch.randn(4, 10), torch.randint(0, 5, (4,))
    shallow = step_memory(nn.Linear(10, 5), inputs, targets)
    deep = step_memory(
        nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5)),
        inputs,
        targets,
    )
    assert deep["activations"] > shallow["activations"]
    assert deep["params"] > shallow["params"]


def test_model_state_is_restored():
    model = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.Linear(8, 5))
    model.eval()
    old_grad = torch.ones_like(model[0].weight)
    model[0].weight.grad = old_grad
    stats = model[1].running_mean.clone()
    result = step_memory(model, torch.randn(6, 10), torch.randint(0, 5, (6,)))
    assert result["grads"] == result["params"]
    assert not any(m.training for m in model.modules())
    assert model[0].weight.grad is old_grad
    assert all(p.grad is None for p in list(model.parameters())[1:])
    assert torch.equal(model[1].running_mean, stats)
