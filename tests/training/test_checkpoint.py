"""labkit.training.checkpoint and fit's checkpoints: atomic writes, plain state, exact resume."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from labkit.config import seed_everything, shown_path
from labkit.training.callbacks import Checkpoints
from labkit.training.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from labkit.training.loop import fit
from labkit.training.recipe import Recipe
from labkit.training.runs import RunSettingsError


class _NoisyData(Dataset):
    """Fixed points plus noise from Python's and NumPy's generators, so both must be restored."""

    def __init__(self, n: int = 24) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 6, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        noise = 0.01 * float(np.random.randn()) + 0.01 * random.random()
        return self.x[i] + noise, self.y[i]


def _run(folder, num_epochs: int, resume: bool = False, seed: int = 0, own_generator=False):
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    recipe = Recipe(num_epochs=num_epochs, lr=0.1, schedule="step", step_gamma=0.5)
    generator = torch.Generator().manual_seed(0) if own_generator else None
    loader = DataLoader(_NoisyData(), batch_size=5, shuffle=True, generator=generator)
    val_loader = DataLoader(_NoisyData(), batch_size=8)
    checkpoints = Checkpoints(folder, resume=resume)
    history = fit(model, (loader, val_loader), recipe, callbacks=[checkpoints])
    return model, history


def _interrupted(folder, interrupt_fit, at: int, **kwargs) -> None:
    interrupt_fit(at)
    with pytest.raises(KeyboardInterrupt):
        _run(folder, **kwargs)


def test_resume_matches_an_uninterrupted_run(tmp_path, capsys, interrupt_fit):
    reference, full_history = _run(None, num_epochs=4)
    _interrupted(tmp_path, interrupt_fit, at=3, num_epochs=4)
    # a fresh model, optimizer, scheduler and loader, and different seeds: all must come back
    model, history = _run(tmp_path, num_epochs=4, resume=True, seed=123)
    assert "resumed after epoch 2 of 4 (same settings)" in capsys.readouterr().out
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    cols = ["train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    assert history[cols].equals(full_history[cols])


def test_resume_restores_a_loader_with_its_own_generator(tmp_path, interrupt_fit):
    reference, _ = _run(None, num_epochs=4, own_generator=True)
    _interrupted(tmp_path, interrupt_fit, at=3, num_epochs=4, own_generator=True)
    model, _ = _run(tmp_path, num_epochs=4, resume=True, seed=5, own_generator=True)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)


def test_resume_without_checkpoint_starts_from_scratch(tmp_path, capsys):
    _, history = _run(tmp_path / "empty", num_epochs=1, resume=True)
    assert "empty: new (no checkpoint with these settings)" in capsys.readouterr().out
    assert len(history) == 1 and (tmp_path / "empty" / "last.pt").is_file()


def test_last_pt_is_plain_state_readable_with_weights_only(tmp_path):
    _run(tmp_path, num_epochs=2)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    expected = {"model", "optimizer", "scheduler", "scaler", "epoch", "history", "rng", "settings"}
    assert expected <= set(state)
    assert state["epoch"] == 2 and state["scaler"] is None
    assert [row["epoch"] for row in state["history"]] == [1, 2]
    assert all(type(v) in (int, float) for row in state["history"] for v in row.values())
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] in (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "settings.json"]


def test_rng_state_round_trip():
    seed_everything(5)
    state = rng_state()
    first = (random.random(), np.random.randn(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.randn(), torch.rand(1).item()) == first


def test_save_atomic_round_trip(tmp_path):
    path = save_atomic({"w": torch.arange(3), "n": 1}, tmp_path / "sub" / "a.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["w"], torch.arange(3)) and loaded["n"] == 1
    with pytest.raises(FileNotFoundError, match="checkpoint_dir"):
        load_checkpoint(tmp_path / "missing.pt")


def _failing_save(obj, f, *args, **kwargs):
    f.write(b"half a checkpoint")
    raise OSError("disk full (simulated)")


def test_interrupted_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save_atomic({"epoch": 1}, tmp_path / "last.pt")
    monkeypatch.setattr(torch, "save", _failing_save)
    with pytest.raises(OSError, match="simulated"):
        save_atomic({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_interrupted_fit_checkpoint_keeps_the_previous_epoch(tmp_path, monkeypatch):
    save, calls = torch.save, []

    def fails_in_epoch_2(obj, f, *args, **kwargs):  # epoch 1 saves best.pt and last.pt
        calls.append(1)
        return (save if len(calls) <= 2 else _failing_save)(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fails_in_epoch_2)
    with pytest.raises(OSError, match="simulated"):
        _run(tmp_path, num_epochs=2)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "settings.json"]


def test_resume_with_a_different_scheduler_setup_is_refused(tmp_path):
    _run(tmp_path, num_epochs=1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler"):
        fit(
            model,
            DataLoader(_NoisyData(), batch_size=5),
            Recipe(num_epochs=2, lr=0.1),
            optimizer=optimizer,
            callbacks=[Checkpoints(tmp_path, resume=True)],
        )


def test_resume_into_another_architecture_names_the_folder(tmp_path):
    _run(tmp_path, num_epochs=1)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(RunSettingsError, match=r"(?s)model.parameter shapes.*Delete") as info:
        fit(
            model,
            DataLoader(_NoisyData(), batch_size=5),
            Recipe(num_epochs=2, lr=0.1, schedule="step"),
            callbacks=[Checkpoints(tmp_path, resume=True)],
        )
    assert shown_path(tmp_path) in str(info.value)
