"""What `labkit.training.loop.fit` calls around its epochs: the `Trainer` state it shares, the
`Callback` protocol, and the pieces every lab uses (progress bars, checkpoints with an exact
resume and a run's identity, the best epoch's weights restored).

A callback overrides any of `Callback`'s hooks; `fit` calls them in the order the callbacks
were given. Every hook gets the `Trainer`, whose `history` holds one dict per finished epoch.

Used in: labkit.training.loop.fit (every lab).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from labkit.config import shown_path
from labkit.training import distributed
from labkit.training.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from labkit.training.recipe import Recipe, monitor_mode
from labkit.training.runs import (
    RunSettingsError,
    is_current,
    run_settings,
    settings_differences,
    settings_digest,
    write_settings,
)
from labkit.training.steps import Task, safe_len

__all__ = ["Callback", "Checkpoints", "ProgressBar", "RestoreBest", "Trainer"]


def say(line: str) -> None:
    """Print on the main process only (every process under torchrun would print it)."""
    if distributed.is_main():
        print(line)


# ---------------------------------------------------------------- the state callbacks see


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value < best if mode == "min" else value > best)


@dataclass
class Trainer:
    """One `fit` call: what it trains and how, and its history so far (one dict per epoch)."""

    model: nn.Module
    train_loader: Iterable
    val_loader: Iterable | None
    recipe: Recipe
    task: Task  # with its loss_fn and forward_fn filled in
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    history: list[dict[str, float]] = field(default_factory=list)
    run_dir: Path | None = None  # the folder of the run's checkpoints (set by `Checkpoints`)

    @property
    def best_epoch(self) -> int | None:
        """The first epoch of the best `recipe.monitor` so far (None: never measured)."""
        monitor, best_epoch, best = self.recipe.monitor, None, None
        for row in self.history:
            if _is_better(row[monitor], best, monitor_mode(monitor)):
                best_epoch, best = row["epoch"], row[monitor]
        return best_epoch

    @property
    def improved(self) -> bool:
        """Whether the last finished epoch is the best so far."""
        return bool(self.history) and self.best_epoch == self.history[-1]["epoch"]

    def should_stop(self) -> bool:
        """Early stopping: `recipe.patience` epochs have passed without a better monitor."""
        patience = self.recipe.patience
        if patience is None or not self.history:
            return False
        return self.history[-1]["epoch"] - (self.best_epoch or 0) >= patience

    def state(self) -> dict[str, Any]:
        """The state of everything a resume restores besides history and RNG, as plain data."""
        generator = getattr(self.train_loader, "generator", None)  # a loader's own shuffling
        return {
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "loader_rng": generator.get_state() if generator is not None else None,
        }

    def load(self, state: dict[str, Any], path: Path) -> None:
        """Restore every part from `state`, read from the checkpoint `path`."""
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(
                f"{path} was saved {'without' if state['scheduler'] is None else 'with'} a "
                "scheduler; pass the same kind of scheduler as the first run, or another folder"
            )
        try:
            distributed.unwrap(self.model).load_state_dict(state["model"])
        except RuntimeError as err:  # another architecture than the one that wrote it
            raise ValueError(
                f"{path} holds weights of another model ({str(err).splitlines()[0]}); delete "
                f"{path.parent} to train this model from scratch, or pass another folder"
            ) from err
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        generator = getattr(self.train_loader, "generator", None)
        if generator is not None and state.get("loader_rng") is not None:
            generator.set_state(state["loader_rng"])


class Callback:
    """A piece `fit` calls; each hook does nothing unless overridden."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (a resume may fill `trainer.history` here)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch `epoch`'s training batches."""

    def on_batch_end(self, trainer: Trainer, means: dict[str, float]) -> None:
        """After each training batch; `means`: the epoch's running "loss" (and "acc")."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After validation, the history row appended and the scheduler stepped."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (or the early stop), when `fit` ends without an error."""

    def teardown(self, trainer: Trainer) -> None:
        """Always, last, also after an error or an interrupt."""


# ---------------------------------------------------------------- progress


class ProgressBar(Callback):
    """One tqdm bar per epoch, labelled `desc epoch/num_epochs`, with the running loss and
    accuracy, left behind with the epoch's means: a compact record in a notebook. Drawn by
    the main process only; `enabled=False` draws nothing."""

    COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")

    def __init__(self, desc: str | None = None, *, enabled: bool = True) -> None:
        self.desc, self.enabled, self.bar = desc or "epoch", enabled, None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.bar = tqdm(
            total=safe_len(trainer.train_loader),
            desc=f"{self.desc} {epoch}/{trainer.recipe.num_epochs}",
            unit="batch",
            leave=True,  # one finished line per epoch
            disable=not self.enabled or not distributed.is_main(),
            dynamic_ncols=True,
        )

    def on_batch_end(self, trainer: Trainer, means: dict[str, float]) -> None:
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in means.items()}, refresh=False)
        self.bar.update()

    def on_epoch_end(self, trainer: Trainer) -> None:
        row = trainer.history[-1]
        self.bar.set_postfix({k: f"{row[k]:.4f}" for k in self.COLUMNS if not math.isnan(row[k])})
        self.teardown(trainer)

    def teardown(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------- checkpoints and runs


class Checkpoints(Callback):
    """`last.pt` after every epoch, `best.pt` at every better monitor, and `settings.json` (the
    run's identity, see `labkit.training.runs.run_settings`), written atomically by the main
    process; a resume continues exactly where the last epoch ended.

    Args:
        folder: the run's folder; None keeps no checkpoint (the callback does nothing).
        resume: continue from `folder/last.pt` (after a dropped kernel, say) up to the recipe's
            epochs. The run's settings must be the ones the checkpoint was written with: other
            settings raise `RunSettingsError` naming them.
        per_settings: `folder` holds runs: this one lives in `folder/<digest of its settings>`
            and resumes from there, so re-running the same call resumes and any change of
            settings starts a separate run. A printed line names the run's folder, and a note
            names each run there of an earlier labkit (not resumed).
        info: what shapes the run that `fit` cannot see (e.g. `{"seed": 0}`), recorded and
            compared with the rest.
    """

    def __init__(
        self,
        folder: str | os.PathLike | None,
        *,
        resume: bool = False,
        per_settings: bool = False,
        info: dict[str, Any] | None = None,
    ) -> None:
        if folder is None and resume:
            raise ValueError("resume=True needs a folder (the one holding last.pt)")
        self.folder = Path(folder) if folder is not None else None
        self.resume, self.per_settings, self.info = resume or per_settings, per_settings, info
        self.settings: dict[str, Any] = {}

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.folder is None:
            return
        names = sorted(trainer.task.val_metrics)
        self.settings = run_settings(
            distributed.unwrap(trainer.model),
            trainer.recipe,
            trainer.optimizer,
            trainer.scheduler,
            trainer.train_loader,
            loss_fn=trainer.task.loss_fn,
            val_loader=trainer.val_loader,
            extra={**({"val_metrics": names} if names else {}), **(self.info or {})},
        )
        folder = self.folder
        if self.per_settings:
            _note_earlier_runs(folder)
            folder = folder / settings_digest(self.settings)
        trainer.run_dir = folder
        if self.resume:
            trainer.history = _resume(folder, trainer, self.settings)
        if not trainer.history and distributed.is_main():
            write_settings(folder, self.settings)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.run_dir is None:
            return
        if distributed.is_main():  # rank 0 alone writes; the others wait for the files
            _save_epoch(trainer, self.settings)
        distributed.barrier()


def _note_earlier_runs(runs_dir: Path) -> None:
    """Name the runs in `runs_dir` of an earlier labkit's layout: they are never resumed."""
    old = [runs_dir / "last.pt"] if (runs_dir / "last.pt").is_file() else []
    if runs_dir.is_dir():
        for folder in sorted(p for p in runs_dir.iterdir() if (p / "last.pt").is_file()):
            path = folder / "settings.json"
            if not is_current(json.loads(path.read_text()) if path.is_file() else None):
                old.append(folder)
    for path in old:
        say(
            f"note: {shown_path(path)} was written by an earlier labkit, whose record of a run's "
            "settings differs, so it is not resumed; delete it to save space"
        )


def _check_settings(state: dict[str, Any], settings: dict[str, Any], path: Path) -> None:
    saved = json.loads(state["settings"]) if "settings" in state else None
    if saved == settings:
        return
    if saved is None:
        why = "it was written without a record of its settings (an older labkit)"
    else:
        lines = settings_differences(saved, settings)
        why = "it was written under other settings:\n  " + "\n  ".join(lines)
    raise RunSettingsError(
        f"will not resume from {shown_path(path)}: {why}\nDelete {shown_path(path.parent)} "
        "to train again with the new settings, or pass another folder, or pass "
        "Checkpoints(..., per_settings=True) so that every set of settings gets a folder of "
        "its own."
    )


def _resume(folder: Path, trainer: Trainer, settings: dict[str, Any]) -> list[dict]:
    path = folder / "last.pt"
    if not path.is_file():
        say(f"run: {shown_path(folder)}: new (no checkpoint with these settings)")
        return []
    state = load_checkpoint(path)
    _check_settings(state, settings, path)
    trainer.load(state, path)
    set_rng_state(state["rng"])
    done, total = state["epoch"], trainer.recipe.num_epochs
    if done >= total:
        say(f"run: {shown_path(folder)}: finished earlier ({done} of {total} epochs), loaded")
    else:
        say(f"run: {shown_path(folder)}: resumed after epoch {done} of {total} (same settings)")
    return list(state["history"])


def _save_epoch(trainer: Trainer, settings: dict[str, Any]) -> None:
    folder, row, monitor = trainer.run_dir, trainer.history[-1], trainer.recipe.monitor
    assert folder is not None
    if trainer.improved:
        best = {
            "model": distributed.unwrap(trainer.model).state_dict(),
            "epoch": row["epoch"],
            "monitor": monitor,
            "value": row[monitor],
        }
        save_atomic(best, folder / "best.pt")
    state = {
        **trainer.state(),
        "epoch": row["epoch"],
        "history": [dict(r) for r in trainer.history],
        "settings": json.dumps(settings, sort_keys=True),
        "rng": rng_state(),  # last, after everything this epoch drew from the generators
    }
    save_atomic(state, folder / "last.pt")


# ---------------------------------------------------------------- the best epoch's weights


class RestoreBest(Callback):
    """At the end, the weights of the best epoch (`recipe.restore_best`; `fit` adds it): kept
    in memory as they come, or read from `best.pt` when the best epoch came before a resume."""

    def __init__(self) -> None:
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.improved:
            state = distributed.unwrap(trainer.model).state_dict()
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.best_epoch is None:
            return
        state, folder = self.best_state, trainer.run_dir
        if state is None:  # the best epoch came before a resume: it lives in best.pt
            if folder is None or not (folder / "best.pt").is_file():
                raise FileNotFoundError(
                    f"restore_best: no best.pt in {folder}; the weights stay last"
                )
            state = load_checkpoint(folder / "best.pt")["model"]
        distributed.unwrap(trainer.model).load_state_dict(state)
