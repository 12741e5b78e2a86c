"""A run never silently resumes other settings: every setting that shapes it, changed alone, is
detected, by `Checkpoints(folder, resume=True)` as an error naming it, and by
`Checkpoints(runs_dir, per_settings=True)` as a separate run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from labkit.config import shown_path
from labkit.data import TensorImageDataset
from labkit.data.transforms import digits_augmentation
from labkit.models import densenet_bc
from labkit.training.callbacks import Checkpoints
from labkit.training.loop import fit
from labkit.training.recipe import Recipe, build_optimizer
from labkit.training.runs import (
    RunSettingsError,
    run_settings,
    settings_differences,
    settings_digest,
)
from labkit.training.steps import Task


def _images(n: int = 12, size: int = 8, seed: int = 0) -> TensorImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return TensorImageDataset(images, torch.arange(n) % 3)


BASE: dict[str, Any] = {
    "builder": {"growth_rate": 4},
    "model": "builder",
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "schedule": "step",
    "step_every": 1,
    "num_epochs": 1,
    "accum_steps": 1,
    "batch_size": 4,
    "data": {},
    "transform": None,
    "shuffle_seed": 0,
    "seed": 0,
    "label_smoothing": 0.0,
    "class_weights": None,
    "shuffle": True,
    "subset_seed": None,
    "val": {"n": 6, "seed": 5},
    "patience": None,
}

# one change each, and the dotted setting name the error must name
CHANGES = {
    "builder arguments": ({"builder": {"growth_rate": 6}}, "model.arguments.growth_rate"),
    "another kind of model": ({"model": "plain"}, "model.builder"),
    "optimiser": ({"optimizer": "adamw"}, "recipe.optimizer"),
    "learning rate": ({"lr": 0.05}, "recipe.lr"),
    "momentum": ({"momentum": 0.5}, "recipe.momentum"),
    "scheduler": ({"schedule": "cosine"}, "recipe.schedule"),
    "scheduler settings": ({"step_every": 2}, "recipe.step_every"),
    "number of epochs": ({"num_epochs": 2}, "recipe.num_epochs"),
    "gradient accumulation": ({"accum_steps": 2}, "recipe.accum_steps"),
    "batch size": ({"batch_size": 6}, "train.batch_size"),
    "data source": ({"data": {"seed": 1}}, "train.data.wraps.contents"),
    "data size": ({"data": {"n": 9}}, "train.data.size"),
    "image size": ({"data": {"size": 6}}, "train.data.wraps.image shape"),
    "augmentation": ({"transform": 8}, "train.data.wraps.transform"),
    "a subset of the data": ({"subset_seed": 1}, "train.data.indices"),
    "shuffling": ({"shuffle": False}, "train.sampler"),
    "shuffling seed": ({"shuffle_seed": 1}, "train.shuffle_seed"),
    "validation data": ({"val": {"n": 6, "seed": 6}}, "validation.data.contents"),
    "seed": ({"seed": 1}, "seed"),
    "label smoothing": ({"label_smoothing": 0.1}, "recipe.label_smoothing"),
    "loss class weights": ({"class_weights": [1.0, 2.0, 1.0]}, "loss.weight"),
    "early stopping": ({"patience": 2}, "recipe.patience"),
    "parameters trained": ({"frozen": True}, "optimizer.param_groups[0].parameters"),
}
RECIPE_FIELDS = (
    *("lr", "momentum", "optimizer", "schedule", "step_every", "num_epochs", "accum_steps"),
    *("batch_size", "label_smoothing", "patience"),
)


def _fit_kwargs(**changes: Any) -> dict[str, Any]:
    """Fresh objects for one fit call with the BASE settings, `changes` applied, and the
    settings the caller states (`info`)."""
    s = BASE | {"frozen": False} | changes
    torch.manual_seed(0)
    if s["model"] == "builder":
        model = densenet_bc(block_config=(1, 1), num_classes=3, **s["builder"])
    else:
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    if s["frozen"]:  # the first layer is not trained
        next(model.parameters()).requires_grad_(False)
    recipe = Recipe(**{name: s[name] for name in RECIPE_FIELDS})
    data = _images(**s["data"])
    if s["transform"] is not None:
        data = data.with_transform(digits_augmentation(s["transform"]))
    if s["subset_seed"] is not None:  # 8 of the 12 images, chosen by the seed
        picked = torch.randperm(12, generator=torch.Generator().manual_seed(s["subset_seed"]))
        data = Subset(data, picked[:8].tolist())
    elif s["data"].get("n", 12) == 12:
        data = Subset(data, list(range(8)))  # the same size as a subset: only indices differ
    loader = DataLoader(
        data,
        batch_size=s["batch_size"],
        shuffle=s["shuffle"],
        generator=torch.Generator().manual_seed(s["shuffle_seed"]),
    )
    weights = s["class_weights"]
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights)) if weights is not None else None
    return {
        "model": model,
        "loaders": (loader, DataLoader(_images(**s["val"]), batch_size=4)),
        "recipe": recipe,
        "task": Task(loss_fn=loss_fn),
        "info": {"seed": s["seed"]},
    }


def _fit(kwargs: dict[str, Any], folder: Path | None = None, **options: Any):
    """`fit` with these arguments, checkpointed in `folder` (see `Checkpoints` for options)."""
    kwargs = dict(kwargs)
    checkpoints = Checkpoints(folder, info=kwargs.pop("info"), **options)
    return fit(**kwargs, callbacks=[checkpoints])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a finished run with the BASE settings."""
    folder = tmp_path_factory.mktemp("run")
    _fit(_fit_kwargs(), folder)
    return folder


def test_the_same_settings_resume(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = _fit(_fit_kwargs(), finished, resume=True)
    assert "finished earlier (1 of 1 epochs), loaded" in capsys.readouterr().out
    assert list(history["epoch"]) == [1]  # loaded, nothing trained again


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_every_setting_changed_alone_is_refused(finished: Path, change: str) -> None:
    changes, name = CHANGES[change]
    before = (finished / "last.pt").read_bytes()
    with pytest.raises(RunSettingsError) as error:
        _fit(_fit_kwargs(**changes), finished, resume=True)
    message = str(error.value)
    assert f"\n  {name}: " in message, message
    assert f"Delete {shown_path(finished)}" in message
    assert (finished / "last.pt").read_bytes() == before  # nothing lost


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_every_setting_changed_alone_gets_its_own_run_folder(change: str) -> None:
    changes, name = CHANGES[change]
    base = _settings(_fit_kwargs())
    changed = _settings(_fit_kwargs(**changes))
    assert settings_digest(base) != settings_digest(changed)
    assert any(line.startswith(f"{name}: ") for line in settings_differences(base, changed))


def _settings(kwargs: dict[str, Any], optimizer: Any = None, scheduler: Any = None):
    """The settings `Checkpoints` records for these fit arguments (the optimizer and scheduler
    `fit` builds from the recipe, unless given)."""
    model, recipe, (train, val) = kwargs["model"], kwargs["recipe"], kwargs["loaders"]
    if optimizer is None:
        optimizer, scheduler = build_optimizer(recipe, model.parameters())
    loss_fn = kwargs["task"].loss_fn or nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    return run_settings(
        model, recipe, optimizer, scheduler, train, loss_fn=loss_fn, val_loader=val,
        extra=kwargs["info"],
    )  # fmt: skip


def test_runs_dir_resumes_the_same_settings_and_starts_others_beside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], interrupt_fit
) -> None:
    runs = tmp_path / "densenet"
    interrupt_fit(2)
    with pytest.raises(KeyboardInterrupt):
        _fit(_fit_kwargs(num_epochs=3), runs, per_settings=True)
    (first,) = runs.iterdir()
    assert "new (no checkpoint with these settings)" in capsys.readouterr().out
    history = _fit(_fit_kwargs(num_epochs=3), runs, per_settings=True)  # re-running the cell
    assert f"{first.name}: resumed after epoch 1 of 3 (same settings)" in capsys.readouterr().out
    assert list(history["epoch"]) == [1, 2, 3]
    _fit(_fit_kwargs(num_epochs=2, lr=0.05), runs, per_settings=True)  # other settings: another
    assert len(list(runs.iterdir())) == 2
    assert (first / "settings.json").is_file()


def test_the_settings_of_a_run_are_plain_and_stable() -> None:
    kwargs = _fit_kwargs()
    settings = _settings(kwargs)
    model = settings["model"]
    assert (model["class"], model["builder"]) == ("DenseNet", "densenet_bc")
    assert model["arguments"] == {"block_config": [1, 1], "num_classes": 3, "growth_rate": 4}
    assert settings["optimizer"]["class"] == "SGD"
    assert settings["optimizer"]["param_groups"][0]["initial_lr"] == 0.1
    assert settings["scheduler"]["class"] == "StepLR" and settings["scheduler"]["step_size"] == 1
    assert settings["recipe"]["num_epochs"] == 1 and settings["train"]["batch_size"] == 4
    assert settings["train"]["data"]["size"] == 8
    assert settings["train"]["data"]["wraps"]["image shape"] == [3, 8, 8]
    assert settings["validation"]["data"]["size"] == 6
    assert settings["seed"] == 0 and settings["train"]["shuffle_seed"] == 0
    assert settings["loss"]["class"] == "CrossEntropyLoss"
    again = _settings(_fit_kwargs())  # fresh objects, same settings
    assert settings_digest(settings) == settings_digest(again)
    assert settings_differences(settings, again) == []


def test_settings_read_the_same_after_the_schedule_changed_the_rate() -> None:
    kwargs = _fit_kwargs(num_epochs=2)
    optimizer, scheduler = build_optimizer(kwargs["recipe"], kwargs["model"].parameters())
    before = _settings(kwargs, optimizer, scheduler)
    arguments = {k: v for k, v in kwargs.items() if k != "info"}
    fit(**arguments, optimizer=optimizer, scheduler=scheduler)  # stepped twice
    assert optimizer.param_groups[0]["lr"] != 0.1
    assert settings_differences(before, _settings(kwargs, optimizer, scheduler)) == []


@pytest.mark.kernel
def test_a_lambda_transform_reads_the_same_in_another_process(tmp_path: Path) -> None:
    code = (
        "import torch; from labkit.training.runs import data_fingerprint\n"
        "from labkit.data import TensorImageDataset\n"
        "images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)\n"
        "labels = torch.zeros(2, dtype=torch.long)\n"
        "data = TensorImageDataset(images, labels, transform=lambda x: x)\n"
        "print(data_fingerprint(data)['transform'])\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout and "0x" not in runs[0].stdout


def test_a_checkpoint_without_settings_is_refused(tmp_path: Path) -> None:
    _fit(_fit_kwargs(), tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["settings"]
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(RunSettingsError, match="without a record of its settings"):
        _fit(_fit_kwargs(), tmp_path, resume=True)


def test_a_checkpoint_of_an_earlier_labkit_in_runs_dir_is_named_not_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fit(_fit_kwargs(), tmp_path)  # the first layout: last.pt in the model folder
    history = _fit(_fit_kwargs(), tmp_path, per_settings=True)
    out = capsys.readouterr().out
    assert "last.pt was written by an earlier labkit" in out and "new (no checkpoint" in out
    assert list(history["epoch"]) == [1]


def test_a_run_folder_of_an_earlier_layout_is_named_not_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fit(_fit_kwargs(), tmp_path, per_settings=True)
    (run,) = tmp_path.iterdir()
    earlier = json.loads((run / "settings.json").read_text())
    del earlier["recipe"]  # settings of a labkit before the recipe: epochs and rates loose
    (run / "settings.json").write_text(json.dumps(earlier))
    old = run.rename(tmp_path / "0123abcd")
    capsys.readouterr()
    history = _fit(_fit_kwargs(), tmp_path, per_settings=True)
    out = capsys.readouterr().out
    assert f"note: {shown_path(old)} was written by an earlier labkit" in out
    assert "not resumed" in out and "new (no checkpoint" in out
    assert list(history["epoch"]) == [1] and (old / "last.pt").is_file()  # kept, not resumed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["0123abcd", run.name])
