"""Lab 02's module: the handout's settings in full, a meaningful cpu profile, the recipe."""

import pytest
import torch
from torch import nn

from labkit.labs.densenet_resnext import PROFILES, optimizer_and_scheduler, settings


def test_full_profile_keeps_the_handout_settings():
    full = PROFILES["full"]
    assert (full.image_size, full.batch_size, full.num_epochs) == (32, 64, 20)
    assert (full.lr, full.momentum, full.weight_decay) == (0.01, 0.9, 5e-4)
    assert full.train_per_class is None and full.test_per_class is None
    assert full.schedule == "cosine"


def test_cpu_trains_on_every_image_and_smoke_on_few():
    cpu, smoke, full = PROFILES["cpu"], PROFILES["smoke"], PROFILES["full"]
    assert cpu.train_per_class is None and cpu.test_per_class is None  # meaningful numbers
    assert cpu.image_size == 16 and cpu.num_epochs < full.num_epochs
    assert smoke.train_per_class is not None and smoke.num_epochs < cpu.num_epochs


def _lrs(schedule: str, num_epochs: int, lr: float) -> list[float]:
    model = nn.Linear(2, 2)
    optimizer, scheduler = optimizer_and_scheduler(
        model, settings("cpu", schedule=schedule, num_epochs=num_epochs, lr=lr)
    )
    lrs = []
    for _ in range(num_epochs):  # as fit steps it: once after every epoch, the last one too
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_one_cycle_warms_up_to_the_peak_then_anneals_once_per_epoch():
    lrs = _lrs("one_cycle", 10, 0.02)
    peak = max(range(10), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(0.02) and 1 <= peak <= 4
    assert lrs[0] == pytest.approx(0.02 / 25)  # OneCycleLR's default start
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_cosine_decays_from_the_rate_to_zero():
    lrs = _lrs("cosine", 4, 0.01)
    assert lrs == pytest.approx([0.01, 0.01 * (1 + 2**-0.5) / 2, 0.005, 0.01 * (1 - 2**-0.5) / 2])


def test_an_unknown_schedule_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown schedule 'linear'.*cosine.*one_cycle"):
        optimizer_and_scheduler(nn.Linear(2, 2), settings("cpu", schedule="linear"))
    with pytest.raises(ValueError, match=r"unknown settings \['epochs'\]"):
        settings("cpu", epochs=3)


def test_optimizer_is_the_handouts_sgd():
    optimizer, _ = optimizer_and_scheduler(nn.Linear(2, 2), settings("full"))
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 5e-4)
