"""labkit.training.memory: step_memory against hand-computed byte counts; a micro-batch fitted
to a memory budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit.training.memory import fit_micro_batch, per_image_bytes, step_memory
from labkit.training.recipe import Recipe


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


MiB = 2**20


def test_fit_micro_batch_lowers_the_batch_and_keeps_the_effective_batch():
    recipe = Recipe(num_epochs=1, lr=0.1, batch_size=8)
    per_image, fixed = 100 * MiB, 300 * MiB
    for budget, (micro, steps) in (
        (fixed + 8 * per_image, (8, 1)),  # fits as it is
        (fixed + 8 * per_image - 1, (4, 2)),
        (fixed + 4 * per_image, (4, 2)),
        (fixed + 3.9 * per_image, (2, 4)),
        (fixed + 2 * per_image, (2, 4)),
        (fixed + 1 * per_image, (1, 8)),
    ):
        fitted = fit_micro_batch(recipe, per_image, budget, fixed_bytes=fixed)
        assert (fitted.batch_size, fitted.accum_steps) == (micro, steps), budget
        assert fitted.effective_batch == 8 and fitted.lr == recipe.lr
    # lab 04's stage 1: 12 x 4 = 48 a step; a card for 5 images takes 4 x 12 -> 4 steps of 12?
    stage1 = Recipe(num_epochs=1, lr=1.0, batch_size=12, accum_steps=4)
    fitted = fit_micro_batch(stage1, per_image, fixed + 5 * per_image, fixed_bytes=fixed)
    assert (fitted.batch_size, fitted.accum_steps) == (4, 12)
    with pytest.raises(MemoryError, match="one image needs 400 MiB .* over the 399 MiB free"):
        fit_micro_batch(recipe, per_image, 399 * MiB, fixed_bytes=fixed)


def test_per_image_bytes_of_a_linear_layer():
    model = nn.Linear(10, 5)
    inputs, targets = torch.randn(4, 10), torch.randint(0, 5, (4,))
    fixed, per_image = per_image_bytes(model, inputs, targets)
    assert per_image == 10 * 4  # the saved float32 input row
    assert fixed == 2 * (10 * 5 + 5) * 4  # weights and their gradients
    recipe = fit_micro_batch(Recipe(num_epochs=1, lr=0.1, batch_size=4), per_image,
                             fixed + 2 * per_image, fixed_bytes=fixed)  # fmt: skip
    assert (recipe.batch_size, recipe.accum_steps) == (2, 2)
