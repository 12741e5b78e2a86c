"""Lab 02's module: the handout's settings in full, a meaningful cpu profile, the recipe."""

import pytest
import torch
from torch import nn

from labkit.labs.densenet_resnext import PROFILES, settings
from labkit.training.recipe import build_optimizer


def test_full_profile_keeps_the_handout_settings():
    full = PROFILES["full"]
    training = full.training
    assert (full.image_size, training.batch_size, training.num_epochs) == (32, 64, 20)
    assert (training.lr, training.momentum, training.weight_decay) == (0.01, 0.9, 5e-4)
    assert full.train_per_class is None and full.test_per_class is None
    assert training.schedule == "cosine" and training.accum_steps == 1
    assert training.patience is None and not training.restore_best  # the last epoch is reported


def test_cpu_trains_on_every_image_and_smoke_on_few():
    cpu, smoke, full = PROFILES["cpu"], PROFILES["smoke"], PROFILES["full"]
    assert cpu.train_per_class is None and cpu.test_per_class is None  # meaningful numbers
    assert cpu.image_size == 16 and cpu.training.num_epochs < full.training.num_epochs
    assert cpu.training.schedule == "one_cycle" and cpu.training.lr == 0.02
    assert smoke.train_per_class is not None
    assert smoke.training.num_epochs < cpu.training.num_epochs


def test_the_cpu_one_cycle_peaks_at_its_rate_in_the_first_epochs():
    recipe = PROFILES["cpu"].training
    optimizer, scheduler = build_optimizer(recipe, nn.Linear(2, 2).parameters())
    lrs = []
    for _ in range(recipe.num_epochs):  # as fit steps it: once after every epoch
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.02) and 1 <= lrs.index(max(lrs)) <= 4
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9  # not cycled


def test_overrides_change_single_fields_of_the_recipe_and_name_unknown_ones():
    changed = settings("cpu", training={"num_epochs": 3, "batch_size": 32})
    assert (changed.training.num_epochs, changed.training.batch_size) == (3, 32)
    assert changed.training.schedule == "one_cycle"  # the rest of the profile's recipe
    assert "batch 32, 3 epochs" in changed.summary()
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'.*cosine.*one_cycle"):
        settings("cpu", training={"schedule": "linear"})
    with pytest.raises(ValueError, match=r"unknown settings \['epochs'\]"):
        settings("cpu", epochs=3)
    with pytest.raises(ValueError, match=r"unknown settings \['epochs'\] in 'training'"):
        settings("cpu", training={"epochs": 3})
