"""A rehearsal (`labkit run --rehearse`, `LABKIT_REHEARSE=1`): the full profile's shapes with a
couple of steps and images, its runs apart from the profile's."""

import io
from dataclasses import fields

import nbformat
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from labkit.data.synthbirds import SynthBirdsSpec
from labkit.labs import bcnn_hbp, densenet_resnext, facenet_knn, opam, vgg_receptive_fields
from labkit.labs.session import REHEARSAL_LINE
from labkit.labs.settings import rehearsing
from labkit.runner import run_labs
from labkit.training.callbacks import Callback
from labkit.training.loop import fit
from labkit.training.recipe import Recipe

LABS = [vgg_receptive_fields, densenet_resnext, facenet_knn, bcnn_hbp, opam]
# what a rehearsal must keep of the full profile: the models and every shape
SHAPES = {"resize", "crop", "image_size", "backbone", "config", "width", "hidden", "hbp_d",
          "embedding_size", "attention_size", "part_size", "grid", "scale_min", "scale_max",
          "num_parts", "batch_norm"}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_rehearsal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_REHEARSE", raising=False)


@pytest.mark.parametrize("lab", LABS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_rehearsal_keeps_full_shapes_and_shrinks_counts(lab) -> None:
    full, rehearsal = lab.settings("full"), lab.settings("full", rehearse=True)
    assert not full.rehearse and rehearsal.rehearse and rehearsal.profile == "full"
    for f in fields(full):
        before, after = getattr(full, f.name), getattr(rehearsal, f.name)
        if f.name in SHAPES:
            assert after == before, f.name
        if isinstance(before, Recipe):  # the same optimiser and schedule, a couple of steps
            assert (after.optimizer, after.schedule, after.lr) == (
                before.optimizer,
                before.schedule,
                before.lr,
            )
            assert after.num_epochs == 1 and after.batch_size <= 2 and after.accum_steps <= 2
            assert after.max_steps == 2 and after.max_eval_batches == 2
            assert before.max_steps is None and before.max_eval_batches is None
        if isinstance(before, SynthBirdsSpec):
            assert after.image_size == before.image_size
            assert after.train_per_class <= 4 and after.test_per_class <= 2
            assert after.num_classes <= 5
        if f.name == "eval_batch_size":
            assert after == 2 < before
    assert rehearsal.summary().startswith("profile: full (")


def test_lab_settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not rehearsing() and not densenet_resnext.settings("full").rehearse
    monkeypatch.setenv("LABKIT_REHEARSE", "1")
    assert rehearsing() and densenet_resnext.settings("full").rehearse
    assert not densenet_resnext.settings("full", rehearse=False).rehearse
    # an override is made first, then capped: a rehearsal never trains 5 epochs
    chosen = densenet_resnext.settings("full", training={"num_epochs": 5})
    assert chosen.training.num_epochs == 1 and chosen.image_size == 32
    monkeypatch.setenv("LABKIT_REHEARSE", "0")
    assert not rehearsing()


def test_lab03_rehearsal_keeps_its_budget_check() -> None:
    s = facenet_knn.settings("full", rehearse=True)
    assert s.pk_classes * s.pk_images == 3 * s.training.batch_size


def test_rehearsal_says_so_first_and_runs_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    lab = densenet_resnext.start("full", rehearse=True)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == REHEARSAL_LINE.format(profile="full") and "mean nothing" in first
    assert (
        lab.run_dir("densenet") == tmp_path / "02_densenet_resnext" / "full-rehearsal" / "densenet"
    )
    real = densenet_resnext.start("full")
    assert real.run_dir("densenet") == tmp_path / "02_densenet_resnext" / "full" / "densenet"
    assert "rehearsal" not in capsys.readouterr().out


class _Count(Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_batch_end(self, trainer, means) -> None:
        self.batches += 1


def _steps_and_eval(recipe: Recipe) -> tuple[int, int, int]:
    """(optimiser steps, training micro-batches, validation batches) of one `fit`."""
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(40, 3), torch.randint(0, 2, (40,)))
    model = nn.Linear(3, 2)
    seen = {"eval": 0}
    model.register_forward_pre_hook(
        lambda m, a: None if m.training else seen.update(eval=seen["eval"] + 1)
    )
    count = _Count()
    train, val = DataLoader(data, batch_size=recipe.batch_size), DataLoader(data, batch_size=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr)
    steps = {"n": 0}
    optimizer.register_step_post_hook(lambda *_: steps.update(n=steps["n"] + 1))
    fit(model, (train, val), recipe, callbacks=[count], optimizer=optimizer)
    return steps["n"], count.batches, seen["eval"]


def test_fit_under_a_rehearsal_cap_takes_two_steps() -> None:
    full = Recipe(num_epochs=3, lr=0.1, batch_size=4, accum_steps=2)
    assert _steps_and_eval(full) == (3 * 5, 3 * 10, 3 * 20)
    capped = densenet_resnext.settings("full", rehearse=True).training
    assert _steps_and_eval(Recipe(num_epochs=1, lr=0.1, batch_size=2, max_steps=2,
                                  max_eval_batches=2)) == (2, 2, 2)  # fmt: skip
    assert _steps_and_eval(Recipe(num_epochs=1, lr=0.1, batch_size=2, accum_steps=2,
                                  max_steps=2, max_eval_batches=2)) == (2, 4, 2)  # fmt: skip
    assert (capped.max_steps, capped.max_eval_batches, capped.num_epochs) == (2, 2, 1)


@pytest.mark.notebook
def test_run_labs_rehearses_in_the_kernel_and_keeps_its_time_apart(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("LABKIT_REHEARSE", "1")  # the runner's flag decides, not the caller's env
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import os; print(repr(os.environ['LABKIT_REHEARSE']))")]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "09_env.ipynb"
    nbformat.write(nb, path)
    for rehearse, shown in ((True, "'1'"), (False, "''")):
        (run,) = run_labs([path], tmp_path / "out", "full", live=False, stream=io.StringIO(),
                          rehearse=rehearse)  # fmt: skip
        assert run.status == "ok"
        executed = nbformat.read(run.executed, as_version=4)
        assert executed.cells[0].outputs[0]["text"].strip() == shown
    assert (tmp_path / "runs" / "09_env" / "full-rehearsal").is_dir()
    assert (tmp_path / "runs" / "09_env" / "full").is_dir()


def test_a_cap_must_be_positive() -> None:
    for name in ("max_steps", "max_eval_batches"):
        with pytest.raises(ValueError, match=f"{name} must be None or a positive int, got 0"):
            Recipe(num_epochs=1, lr=0.1, **{name: 0})
