"""The one training loop every lab uses (`fit`), and evaluation (`evaluate`).

`fit(model, loaders, recipe, callbacks=...)` trains for the recipe's epochs and returns a
pandas history table, one row per epoch. The recipe (`labkit.training.recipe.Recipe`) says how:
optimiser, schedule, accumulation, early stopping; the task (`labkit.training.steps.Task`) what
a batch is scored by; callbacks (`labkit.training.callbacks`) add progress bars and checkpoints
with an exact resume. A training step, mixed precision on CUDA and the out-of-memory advice
live in `labkit.training.steps`; DDP's pieces in `labkit.training.distributed`.

Used in: every lab.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import torch
from torch import nn

from labkit.training import distributed
from labkit.training.callbacks import Callback, Checkpoints, RestoreBest, Trainer
from labkit.training.metrics import accuracy
from labkit.training.model_utils import eval_mode, model_device, to_device
from labkit.training.recipe import Recipe, build_optimizer, monitor_mode
from labkit.training.steps import (
    ForwardFn,
    LossFn,
    MetricFn,
    MicroBatchShares,
    Task,
    amp_settings,
    autocast,
    backward_step,
    batch_size,
    first_rows,
    forward,
    group_size,
    nonfinite_error,
    oom_error,
    optimizer_step,
    safe_len,
    unpack,
)

__all__ = ["HISTORY_COLUMNS", "evaluate", "fit"]

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
Loaders = Iterable | tuple[Iterable, Iterable | None]


def fit(
    model: nn.Module,
    loaders: Loaders,
    recipe: Recipe,
    *,
    task: Task | None = None,
    callbacks: Sequence[Callback] = (),
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    amp: bool | str = "auto",
) -> pd.DataFrame:
    """Train `model` as `recipe` says and return the history, one row per epoch.

    Args:
        loaders: the training loader, or (train_loader, val_loader) to validate after each
            epoch. Batches are `(inputs, targets)`, moved to the model's device.
        recipe: epochs, optimiser and schedule (built by `build_optimizer` over the parameters
            that require gradients), accumulation, early stopping on `recipe.monitor`, the best
            epoch's weights restored.
        task: loss, metric and forward pass (default: classification, see `Task`).
        callbacks: called in this order around each epoch, e.g. `ProgressBar(name)`,
            `Checkpoints(runs_dir, per_settings=True, info={"seed": 0})`.
        optimizer, scheduler: built by the caller instead of from the recipe (a schedule the
            recipe cannot say); the scheduler is stepped once per epoch, `ReduceLROnPlateau`
            with the monitored value.
        amp: mixed precision, CUDA only (see `amp_settings`); off on a CPU without error.

    Returns:
        DataFrame with columns `HISTORY_COLUMNS` (NaN where not measured), then one column per
        `task.val_metrics` entry; `attrs["best_epoch"]` (None when the monitor was never
        measured), `attrs["monitor"]` and `attrs["run_dir"]` (the checkpoint folder or None).
    """
    trainer = _trainer(model, loaders, recipe, task or Task(), optimizer, scheduler, amp)
    pieces = [*callbacks, *([RestoreBest()] if recipe.restore_best else [])]
    if sum(isinstance(piece, Checkpoints) for piece in pieces) > 1:
        raise ValueError("pass one Checkpoints callback: a run has one folder")
    try:
        _call(pieces, "on_fit_start", trainer)
        for epoch in range(len(trainer.history) + 1, recipe.num_epochs + 1):
            if trainer.should_stop():
                break
            trainer.history.append(_run_epoch(trainer, pieces, epoch=epoch))
            _step_scheduler(trainer.scheduler, trainer.history[-1][recipe.monitor])
            _call(pieces, "on_epoch_end", trainer)
        _call(pieces, "on_fit_end", trainer)
    finally:
        _call(pieces, "teardown", trainer)
    columns = HISTORY_COLUMNS + [f"val_{name}" for name in trainer.task.val_metrics]
    history = pd.DataFrame.from_records(trainer.history, columns=columns)
    history.attrs.update(
        best_epoch=trainer.best_epoch, monitor=recipe.monitor, run_dir=trainer.run_dir
    )
    return history


def _call(pieces: Sequence[Callback], hook: str, *args: Any) -> None:
    for piece in pieces:
        getattr(piece, hook)(*args)


def _trainer(
    model: nn.Module,
    loaders: Loaders,
    recipe: Recipe,
    task: Task,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    amp: bool | str,
) -> Trainer:
    """Check the call and build what it trains with."""
    train_loader, val_loader = loaders if isinstance(loaders, tuple) else (loaders, None)
    if task.loss_fn is not None and recipe.label_smoothing:
        raise ValueError("recipe.label_smoothing is for the default loss; pass it to your loss_fn")
    if optimizer is None:
        if scheduler is not None:
            raise ValueError("pass the scheduler's optimizer too (optimizer=)")
        optimizer, scheduler = build_optimizer(recipe, model.parameters())
    _check_monitor(recipe, scheduler, val_loader is not None, task.metric_fn is not None)
    loss_fn = task.loss_fn or nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    amp_dtype, scaler = amp_settings(model_device(model), amp)
    return Trainer(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        recipe=recipe,
        task=replace(task, loss_fn=loss_fn, forward_fn=task.forward_fn or forward),
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        amp_dtype=amp_dtype,
    )


def _check_monitor(recipe: Recipe, scheduler: Any, has_val: bool, has_metric: bool) -> None:
    monitor = recipe.monitor
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    missing = (monitor.startswith("val") and not has_val) or (
        monitor.endswith("acc") and not has_metric
    )
    if missing and (recipe.patience is not None or recipe.restore_best or plateau):
        raise ValueError(
            f"monitor={monitor!r} is never measured (no val_loader, or metric_fn is None) but "
            "patience, restore_best or a plateau schedule needs it; pass (train_loader, "
            "val_loader) and a metric_fn, or choose another monitor such as 'train_loss'"
        )
    if plateau and scheduler.mode != monitor_mode(monitor):
        raise ValueError(
            f"ReduceLROnPlateau(mode={scheduler.mode!r}) does not match monitor={monitor!r}; "
            f"build it with mode={monitor_mode(monitor)!r}"
        )


def _step_scheduler(scheduler: Any, value: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(value)
    elif scheduler is not None:
        scheduler.step()


# ---------------------------------------------------------------- one epoch


def _run_epoch(trainer: Trainer, pieces: Sequence[Callback], *, epoch: int) -> dict[str, float]:
    """Train one epoch, validate, and return its history row."""
    lr = float(trainer.optimizer.param_groups[0]["lr"])
    start = time.perf_counter()
    distributed.set_epoch(trainer.train_loader, epoch)
    _call(pieces, "on_epoch_start", trainer, epoch)
    try:
        train_loss, train_acc = _train_epoch(trainer, pieces, epoch)
        validated = _validate(trainer)
    except torch.cuda.OutOfMemoryError as err:
        raise oom_error(err, model_device(trainer.model), epoch) from err
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": validated.pop("val_loss"),
        "val_acc": validated.pop("val_acc"),
        "lr": lr,
        "seconds": time.perf_counter() - start,
        **validated,
    }


def _train_epoch(trainer: Trainer, pieces: Sequence[Callback], epoch: int) -> tuple[float, float]:
    model, task, optimizer = trainer.model, trainer.task, trainer.optimizer
    device, num_batches = model_device(model), _capped_len(trainer)
    folder = trainer.run_dir
    last_good = folder / "last.pt" if folder and (folder / "last.pt").is_file() else None
    model.train()
    optimizer.zero_grad(set_to_none=True)
    _loss_hook(task.loss_fn, "on_train_epoch_start")
    total_loss = total_correct = 0.0
    seen = pending = 0
    shares = MicroBatchShares()  # each micro-batch's loss weighs n_i / N of its step's samples
    for index, batch in enumerate(trainer.train_loader):
        if num_batches is not None and index >= num_batches:
            break  # a rehearsal's cap (recipe.max_steps)
        inputs, targets = to_device(unpack(batch), device)
        group = group_size(index, num_batches, trainer.recipe.accum_steps)
        n = batch_size(inputs, targets)
        with distributed.gradient_sync(model, ends_step=pending + 1 == group):
            outputs, loss = backward_step(
                model,
                inputs,
                targets,
                loss_fn=task.loss_fn,
                forward_fn=task.forward_fn,
                loss_scale=shares.loss_scale(n, group),
                amp_dtype=trainer.amp_dtype,
                scaler=trainer.scaler,
            )
        value = loss.item()
        if not math.isfinite(value):
            raise nonfinite_error(value, epoch, index + 1, last_good)
        pending += 1
        if pending == group:
            optimizer_step(optimizer, trainer.scaler, shares.grad_factor())
            pending = 0
        seen += n
        total_loss += value * n
        means = {"loss": total_loss / seen}
        if task.metric_fn is not None:
            total_correct += task.metric_fn(outputs, targets) * n
            means["acc"] = total_correct / seen
        _call(pieces, "on_batch_end", trainer, means)
    if pending:  # an unknown-length loader ended inside a step
        optimizer_step(optimizer, trainer.scaler, shares.grad_factor())
    if seen == 0:
        raise ValueError("the training loader yielded no batches; check the dataset is not empty")
    _loss_hook(task.loss_fn, "on_train_epoch_end")
    total_loss, total_correct, seen = distributed.sum_over_processes(
        [total_loss, total_correct, seen], device
    )  # every process gets the whole epoch's means
    return total_loss / seen, (total_correct / seen if task.metric_fn is not None else math.nan)


def _capped_len(trainer: Trainer) -> int | None:
    """Micro-batches this epoch trains on: the loader's, or `recipe.max_steps` steps' worth."""
    length, recipe = safe_len(trainer.train_loader), trainer.recipe
    if recipe.max_steps is None:
        return length
    cap = recipe.max_steps * recipe.accum_steps
    return cap if length is None else min(length, cap)


def _loss_hook(fn: Any, name: str) -> None:
    # a loss_fn's optional per-epoch method (e.g. a mined loss checking the epoch found triplets)
    hook = getattr(fn, name, None)
    if callable(hook):
        hook()


def _validate(trainer: Trainer) -> dict[str, float]:
    """The validation columns of one epoch: val_loss, val_acc and `val_<name>` per extra metric."""
    task = trainer.task
    extra = {f"val_{name}": math.nan for name in task.val_metrics}
    if trainer.val_loader is None:
        return {"val_loss": math.nan, "val_acc": math.nan, **extra}
    metrics = {"acc": task.metric_fn} if task.metric_fn is not None else {}
    metrics.update(task.val_metrics)
    with autocast(model_device(trainer.model), trainer.amp_dtype):
        result = _eval_loop(
            trainer.model,
            trainer.val_loader,
            task.loss_fn,
            task.forward_fn,
            metrics,
            max_batches=trainer.recipe.max_eval_batches,
        )
    return {f"val_{k}": result.get(k, math.nan) for k in ("loss", "acc", *task.val_metrics)}


# ---------------------------------------------------------------- evaluation


def _eval_loop(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    forward_fn: ForwardFn,
    metrics: Mapping[str, MetricFn],
    max_batches: int | None = None,
) -> dict[str, float]:
    device = model_device(model)
    totals = dict.fromkeys(["loss", *metrics], 0.0)
    seen, own = 0, distributed.own_samples(loader)  # own: samples before a sampler's padding
    with eval_mode(model), torch.no_grad():
        for index, batch in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break  # a rehearsal's cap (recipe.max_eval_batches)
            inputs, targets = to_device(unpack(batch), device)
            outputs = forward_fn(model, inputs)
            n = batch_size(inputs, targets)
            if own is not None and seen + n > own:  # repeats of other processes' samples
                n = max(own - seen, 0)  # (the forward still ran, as on every process)
                outputs, targets = first_rows(outputs, n), first_rows(targets, n)
            if n == 0:
                continue
            totals["loss"] += loss_fn(outputs, targets).item() * n
            for name, metric in metrics.items():
                totals[name] += metric(outputs, targets) * n
            seen += n
    *sums, seen = distributed.sum_over_processes([*totals.values(), seen], device)
    if seen == 0:
        raise ValueError("the evaluation loader yielded no batches; check the dataset is not empty")
    return {name: total / seen for name, total in zip(totals, sums, strict=True)}


def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn | None = None,
    *,
    topk: tuple[int, ...] = (1, 5),
    forward_fn: ForwardFn | None = None,
) -> dict[str, float]:
    """Mean loss and top-k accuracies of `model` over `loader`, in eval mode under `no_grad`.

    Returns:
        {"loss": ..., "top1": ..., "top5": ...}: means over samples; accuracies are fractions
        in [0, 1], with k capped at num_classes. `topk=()` gives the loss only.
    """
    metrics = {f"top{k}": (lambda out, y, k=k: accuracy(out, y, k)) for k in topk}
    return _eval_loop(
        model, loader, loss_fn or nn.CrossEntropyLoss(), forward_fn or forward, metrics
    )
