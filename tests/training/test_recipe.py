"""labkit.training.recipe: one recipe, checked where it is made, and the one builder of its
optimiser and schedule, each schedule followed epoch by epoch as `fit` steps it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit.training.recipe import SCHEDULES, Recipe, build_optimizer


def _lrs(num_epochs: int, monitored: list[float] | None = None, **fields) -> list[float]:
    """The rate of every epoch of a recipe, the scheduler stepped once after each (as fit)."""
    recipe = Recipe(num_epochs=num_epochs, **fields)
    optimizer, scheduler = build_optimizer(recipe, nn.Linear(2, 2).parameters())
    lrs = []
    for epoch in range(num_epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(monitored[epoch])
        elif scheduler is not None:
            scheduler.step()
    return lrs


def test_constant_keeps_the_rate_without_a_scheduler():
    assert _lrs(3, lr=0.1) == [0.1, 0.1, 0.1]
    assert build_optimizer(Recipe(num_epochs=3, lr=0.1), nn.Linear(2, 2).parameters())[1] is None


def test_one_cycle_warms_up_to_the_peak_then_anneals_once_per_epoch():
    lrs = _lrs(10, lr=0.02, schedule="one_cycle")
    peak = max(range(10), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(0.02) and 1 <= peak <= 4
    assert lrs[0] == pytest.approx(0.02 / 25)  # OneCycleLR's default start
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_one_cycle_keeps_the_momentum():
    recipe = Recipe(num_epochs=4, lr=0.1, schedule="one_cycle", momentum=0.8)
    optimizer, scheduler = build_optimizer(recipe, nn.Linear(2, 2).parameters())
    for _ in range(3):
        optimizer.step()
        scheduler.step()
        assert optimizer.param_groups[0]["momentum"] == 0.8


def test_cosine_decays_from_the_rate_to_zero():
    lrs = _lrs(4, lr=0.01, schedule="cosine")
    assert lrs == pytest.approx([0.01, 0.01 * (1 + 2**-0.5) / 2, 0.005, 0.01 * (1 - 2**-0.5) / 2])


def test_step_multiplies_the_rate_every_few_epochs():
    lrs = _lrs(5, lr=0.9, schedule="step", step_every=2, step_gamma=1 / 3)
    assert lrs == pytest.approx([0.9, 0.9, 0.3, 0.3, 0.1])


@pytest.mark.parametrize(
    ("monitor", "monitored"),
    [("val_acc", [0.5, 0.6, 0.6, 0.6, 0.6, 0.6]), ("val_loss", [1.0, 0.9, 0.9, 0.9, 0.9, 0.9])],
)
def test_plateau_divides_by_ten_after_patience_epochs_in_the_monitors_direction(monitor, monitored):
    # more than 2 epochs without a better value: the third after the best lowers the rate
    lrs = _lrs(6, monitored, lr=0.1, schedule="plateau", plateau_patience=2, monitor=monitor)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.01])


def test_the_optimiser_trains_only_parameters_that_require_gradients():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    recipe = Recipe(num_epochs=1, lr=0.01, weight_decay=5e-4)
    optimizer, _ = build_optimizer(recipe, model.parameters())
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert [p.shape for p in group["params"]] == [(2, 3), (2,)]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 5e-4)
    adamw, _ = build_optimizer(Recipe(num_epochs=1, lr=1e-3, optimizer="adamw"), model.parameters())
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["betas"] == (0.9, 0.999)


def test_a_recipe_refuses_unknown_names_and_bad_counts():
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'.*cosine.*one_cycle"):
        Recipe(num_epochs=1, lr=0.1, schedule="linear")
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'"):
        Recipe(num_epochs=1, lr=0.1, optimizer="adam")
    with pytest.raises(ValueError, match=r"unknown monitor 'accuracy'"):
        Recipe(num_epochs=1, lr=0.1, monitor="accuracy")
    for field in ("num_epochs", "accum_steps", "batch_size"):
        with pytest.raises(ValueError, match=f"{field} must be a positive int"):
            Recipe(**{"num_epochs": 1, "lr": 0.1, field: 0})
    with pytest.raises(ValueError, match="patience must be None or a positive int"):
        Recipe(num_epochs=1, lr=0.1, patience=0)
    with pytest.raises(TypeError, match=r"patience=True should be int or None, not bool"):
        Recipe(num_epochs=1, lr=0.1, patience=True)
    with pytest.raises(TypeError, match=r"lr=None should be float, not NoneType"):
        Recipe(num_epochs=1, lr=None)
    with pytest.raises(TypeError, match=r"num_epochs=2.0 should be int, not float"):
        Recipe(num_epochs=2.0, lr=0.1)
    assert Recipe(num_epochs=1, lr=1).lr == 1  # an int rate is a float
    assert Recipe(num_epochs=1, lr=0.1, batch_size=8, accum_steps=4).effective_batch == 32
    assert set(SCHEDULES) == {"constant", "plateau", "cosine", "one_cycle", "step"}
