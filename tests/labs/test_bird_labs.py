"""What the bird labs share (labkit.labs.birds): one network trained for one stage, with the
settings' loaders, checkpointed by its settings; the note on what early stopping kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from labkit.data.birds import carve_validation
from labkit.labs.birds import (
    SOURCE_BIRDS,
    SYNTHETIC_BIRDS,
    BirdsSettings,
    early_stopping_note,
    load_lab_birds,
    train_stage,
)
from labkit.training.recipe import Recipe

SETTINGS = BirdsSettings(profile="smoke", resize=56, crop=48, synthetic=SYNTHETIC_BIRDS["smoke"],
                         source=SOURCE_BIRDS["smoke"], eval_batch_size=5)  # fmt: skip


def _net(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))  # fmt: skip


def test_a_stage_trains_as_its_recipe_says_and_a_second_call_loads(tmp_path: Path, capsys) -> None:
    data = load_lab_birds(SETTINGS, root=tmp_path, verbose=False)
    train, val = carve_validation(data.train, 0.2)
    recipe = Recipe(num_epochs=2, batch_size=4, lr=0.01, schedule="cosine")  # the last kept
    torch.manual_seed(0)
    model = _net(data.num_classes)
    history = train_stage(model, recipe, train, val, SETTINGS, runs_dir=tmp_path / "runs",
                          run_info={"what": "test"}, seed=3, progress=False)  # fmt: skip
    assert history["epoch"].tolist() == [1, 2] and history["val_acc"].between(0, 1).all()
    run = history.attrs["run_dir"]
    assert run.parent == tmp_path / "runs"  # one folder per settings, seed and run_info
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    capsys.readouterr()
    again = train_stage(_net(data.num_classes), recipe, train, val, SETTINGS,
                        runs_dir=tmp_path / "runs", run_info={"what": "test"}, seed=3,
                        progress=False)  # fmt: skip
    assert "finished earlier" in capsys.readouterr().out
    assert again["seconds"].tolist() == history["seconds"].tolist()
    other = train_stage(_net(data.num_classes), recipe, train, val, SETTINGS,
                        runs_dir=tmp_path / "runs", run_info={"what": "test"}, seed=4,
                        progress=False)  # fmt: skip
    assert other.attrs["run_dir"] != run  # another seed: another run
    assert all(torch.isfinite(v.float()).all() for v in trained.values())


def test_early_stopping_note_says_when_epoch_1_was_kept() -> None:
    swung = pd.DataFrame({"val_acc": [0.983, 0.883, 0.65, 0.833, 0.917]})
    assert early_stopping_note(swung) == (
        "early stopping kept epoch 1 of 5 (98.3% on validation): after it the validation "
        "accuracy swung (88.3%, 65.0%, 83.3%, 91.7%) without beating it, so the network kept is "
        "the one after a single epoch of fine-tuning"
    )
    rising = pd.DataFrame({"val_acc": [0.5, 0.7, 0.6, 0.65]})
    assert early_stopping_note(rising) == (
        "early stopping kept epoch 2 of 4 (70.0% on validation); the 2 epochs after it reached "
        "65.0% at best"
    )
    assert early_stopping_note(pd.DataFrame({"val_acc": [0.9, 0.8, 0.7]})).endswith(
        "the 2 epochs after it reached 80.0% at best"
    )  # falling steadily from epoch 1: no swing
