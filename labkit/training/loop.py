"""The one training loop every lab uses (`fit`), evaluation (`evaluate`), and their small parts.

`fit` trains for `num_epochs`, shows one progress bar per epoch (a compact record in a
notebook), and returns a pandas history table. It also handles validation, schedulers, early
stopping, best-epoch tracking, gradient accumulation, mixed precision on CUDA, and atomic
checkpoints with an exact resume.

Batches are `(inputs, targets)` pairs; `inputs` and `targets` may be tensors or (nested)
tuples, lists or dicts of tensors, moved to the model's device. `forward_fn(model, inputs)`
says how inputs go through the model (default `model(inputs)`), and `loss_fn(outputs, targets)`
must return the batch mean (as `nn.CrossEntropyLoss()` does).

Used in: every lab (02_densenet_resnext, 03_facenet_knn so far).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from labkit.config import shown_path
from labkit.training import distributed
from labkit.training.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from labkit.training.metrics import accuracy
from labkit.training.model_utils import eval_mode, model_device, to_device
from labkit.training.runs import (
    RunSettingsError,
    run_settings,
    settings_differences,
    settings_digest,
    write_settings,
)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
MONITORS = ("val_acc", "val_loss", "train_acc", "train_loss")

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
MetricFn = Callable[[torch.Tensor, Any], float]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------- small public parts


def amp_settings(
    device: torch.device, amp: bool | str = "auto"
) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """The autocast dtype (None: full precision) and grad scaler for `amp` on `device`.

    Mixed precision is CUDA-only: `"auto"` and `True` turn it on for CUDA and off elsewhere
    (no error on a CPU, so one notebook runs everywhere). On CUDA it is bf16 when the GPU
    supports it (no scaler needed), else fp16 with a `GradScaler`.
    """
    if amp not in ("auto", True, False):
        raise ValueError(f"amp must be 'auto', True or False, got {amp!r}")
    if not amp or device.type != "cuda":
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(inputs)


def _unpack(batch: Any) -> tuple[Any, Any]:
    if not isinstance(batch, (list, tuple)) or len(batch) != 2:
        raise ValueError(
            f"expected batches of (inputs, targets), got {type(batch).__name__}"
            f"{f' of length {len(batch)}' if isinstance(batch, (list, tuple)) else ''}; "
            "make the dataset return (inputs, targets) pairs"
        )
    return batch[0], batch[1]


def _batch_size(inputs: Any, targets: Any) -> int:
    for item in (targets, inputs):
        if isinstance(item, torch.Tensor) and item.ndim > 0:
            return item.shape[0]
    if isinstance(inputs, (list, tuple)) and inputs:
        return _batch_size(inputs[0], None)
    raise ValueError("cannot tell the batch size: neither targets nor inputs is a tensor")


def backward_step(
    model: nn.Module,
    inputs: Any,
    targets: Any,
    *,
    loss_fn: LossFn,
    forward_fn: ForwardFn | None = None,
    loss_scale: float = 1.0,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one micro-batch; gradients add up in `.grad`, no optimizer step.

    The loss is multiplied by `loss_scale` (1 / micro-batches per step) before `backward`,
    so k equal micro-batches give the gradient of their concatenation.

    Returns:
        (outputs, loss): detached; `loss` is the unscaled batch mean.
    """
    forward_fn = forward_fn or _forward
    with _autocast(model_device(model), amp_dtype):
        outputs = forward_fn(model, inputs)
        loss = loss_fn(outputs, targets)
    scaled = loss * loss_scale
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return outputs.detach(), loss.detach()


def _optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _group_size(index: int, num_batches: int | None, accum_steps: int) -> int:
    # Micro-batches in the optimizer step that batch `index` belongs to (the last may be short).
    if num_batches is None:
        return accum_steps
    start = index - index % accum_steps
    return min(accum_steps, num_batches - start)


def _safe_len(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


# ---------------------------------------------------------------- evaluation


def _eval_loop(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    forward_fn: ForwardFn,
    metrics: dict[str, MetricFn],
) -> dict[str, float]:
    device = model_device(model)
    totals = dict.fromkeys(["loss", *metrics], 0.0)
    seen = 0
    with eval_mode(model), torch.no_grad():
        for batch in loader:
            inputs, targets = to_device(_unpack(batch), device)
            outputs = forward_fn(model, inputs)
            n = _batch_size(inputs, targets)
            totals["loss"] += loss_fn(outputs, targets).item() * n
            for name, metric in metrics.items():
                totals[name] += metric(outputs, targets) * n
            seen += n
    if seen == 0:
        raise ValueError("the evaluation loader yielded no batches; check the dataset is not empty")
    *sums, seen = distributed.sum_over_processes([*totals.values(), seen], device)
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
        model, loader, loss_fn or nn.CrossEntropyLoss(), forward_fn or _forward, metrics
    )


# ---------------------------------------------------------------- checks and bookkeeping


def _monitor_mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _best_epoch(records: list[dict], monitor: str) -> int | None:
    best_epoch, best = None, None
    for row in records:
        if _is_better(row[monitor], best, _monitor_mode(monitor)):
            best_epoch, best = row["epoch"], row[monitor]
    return best_epoch


def _should_stop(records: list[dict], best_epoch: int | None, patience: int | None) -> bool:
    if patience is None or not records:
        return False
    return records[-1]["epoch"] - (best_epoch or 0) >= patience


def _check_args(
    *,
    num_epochs: int,
    accum_steps: int,
    monitor: str,
    patience: int | None,
    restore_best: bool,
    scheduler: Any,
    has_val: bool,
    has_metric: bool,
    resume: bool,
    checkpoint_dir: Any,
) -> None:
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    if not isinstance(accum_steps, int) or accum_steps < 1:
        raise ValueError(f"accum_steps must be a positive int, got {accum_steps!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be None or a positive int, got {patience!r}")
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir= (the folder holding last.pt)")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    missing = (monitor.startswith("val") and not has_val) or (
        monitor.endswith("acc") and not has_metric
    )
    if missing and (patience is not None or restore_best or plateau):
        raise ValueError(
            f"monitor={monitor!r} is never measured (val_loader or metric_fn is None) but "
            "patience, restore_best or ReduceLROnPlateau needs it; pass val_loader= and "
            "metric_fn=, or choose another monitor such as 'train_loss'"
        )
    if plateau and scheduler.mode != _monitor_mode(monitor):
        raise ValueError(
            f"ReduceLROnPlateau(mode={scheduler.mode!r}) does not match monitor={monitor!r}; "
            f"build it with mode={_monitor_mode(monitor)!r}"
        )


def _step_scheduler(scheduler: Any, value: float) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(value)
    else:
        scheduler.step()


@dataclass(frozen=True)
class _Trainables:
    """Everything a checkpoint saves and a resume restores, besides history and RNG states."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    generator: torch.Generator | None  # a DataLoader's own shuffling generator, if it has one

    def state(self) -> dict[str, Any]:
        """The state of every part, as plain data."""
        return {
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "loader_rng": self.generator.get_state() if self.generator is not None else None,
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
                f"{path.parent} to train this model from scratch, or pass another checkpoint_dir"
            ) from err
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.generator is not None and state.get("loader_rng") is not None:
            self.generator.set_state(state["loader_rng"])


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
        "to train again with the "
        "new settings, pass another checkpoint_dir, or pass runs_dir= so that every set of "
        "settings gets a folder of its own."
    )


def _resume(folder: Path, parts: _Trainables, settings: dict[str, Any]) -> list[dict]:
    path = folder / "last.pt"
    if not path.is_file():
        _say(f"run: {shown_path(folder)}: new (no checkpoint with these settings)")
        return []
    state = load_checkpoint(path)
    _check_settings(state, settings, path)
    parts.load(state, path)
    set_rng_state(state["rng"])
    done, total = state["epoch"], settings["num_epochs"]
    if done >= total:
        _say(f"run: {shown_path(folder)}: finished earlier ({done} of {total} epochs), loaded")
    else:
        _say(f"run: {shown_path(folder)}: resumed after epoch {done} of {total} (same settings)")
    return list(state["history"])


def _say(line: str) -> None:
    """Print on the main process only (every process under torchrun would print it)."""
    if distributed.is_main():
        print(line)


def _oom_error(err: Exception, device: torch.device, epoch: int) -> torch.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError(
        f"out of memory on {device} in epoch {epoch}: make the batch smaller in the lab's first "
        "cell: the lab module's start(...) takes any of the settings its profile line names "
        "(e.g. lab02.start(batch_size=32)); where the lab's recipe passes accum_steps, a k "
        "times smaller batch with accum_steps=k keeps the effective batch. Either change starts "
        f"a new run. Mixed precision (amp=True) needs CUDA. Original error: {err}"
    )


# ---------------------------------------------------------------- the loop


@dataclass(frozen=True)
class _Setup:
    """How one batch is trained and scored; fixed for a whole `fit` call."""

    loss_fn: LossFn
    metric_fn: MetricFn | None
    forward_fn: ForwardFn
    val_metrics: Mapping[str, MetricFn]
    accum_steps: int
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None


def _train_epoch(
    model: nn.Module,
    train_loader: Iterable,
    bar: tqdm,
    num_batches: int | None,
    optimizer: torch.optim.Optimizer,
    setup: _Setup,
    epoch: int,
    last_good: Path | None,
) -> tuple[float, float]:
    device = model_device(model)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    _epoch_hook(setup.loss_fn, "on_train_epoch_start")
    total_loss = total_correct = 0.0
    seen = pending = 0
    for index, batch in enumerate(train_loader):
        inputs, targets = to_device(_unpack(batch), device)
        group = _group_size(index, num_batches, setup.accum_steps)
        # under DDP, gradients are averaged over processes once per step, not per micro-batch
        syncs = pending + 1 == group or not isinstance(model, DistributedDataParallel)
        with nullcontext() if syncs else model.no_sync():
            outputs, loss = backward_step(
                model,
                inputs,
                targets,
                loss_fn=setup.loss_fn,
                forward_fn=setup.forward_fn,
                loss_scale=1.0 / group,
                amp_dtype=setup.amp_dtype,
                scaler=setup.scaler,
            )
        value = loss.item()
        if not math.isfinite(value):
            raise _nonfinite_error(value, epoch, index + 1, last_good)
        pending += 1
        if pending == group:
            _optimizer_step(optimizer, setup.scaler)
            pending = 0
        n = _batch_size(inputs, targets)
        seen += n
        total_loss += value * n
        postfix = {"loss": f"{total_loss / seen:.4f}"}
        if setup.metric_fn is not None:
            total_correct += setup.metric_fn(outputs, targets) * n
            postfix["acc"] = f"{total_correct / seen:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update()
    if pending:  # an unknown-length loader ended inside a step
        _optimizer_step(optimizer, setup.scaler)
    if seen == 0:
        raise ValueError("train_loader yielded no batches; check the dataset is not empty")
    _epoch_hook(setup.loss_fn, "on_train_epoch_end")
    total_loss, total_correct, seen = distributed.sum_over_processes(
        [total_loss, total_correct, seen], device
    )  # every process gets the whole epoch's means
    return total_loss / seen, (total_correct / seen if setup.metric_fn is not None else math.nan)


def _epoch_hook(fn: Any, name: str) -> None:
    # a loss_fn's optional per-epoch method (e.g. a mined loss checking the epoch found triplets)
    hook = getattr(fn, name, None)
    if callable(hook):
        hook()


def _nonfinite_error(value: float, epoch: int, step: int, last_good: Path | None) -> Exception:
    where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint saved yet"
    return NonFiniteLossError(
        f"loss is {value} at epoch {epoch}, step {step}; {where}. Lower the learning rate "
        "(e.g. by 10x) and train again: with runs_dir= the new rate is a new run, and the "
        "diverged one stays in its own folder"
    )


def _validate(model: nn.Module, val_loader: Iterable | None, setup: _Setup) -> dict[str, float]:
    """The validation columns of one epoch: val_loss, val_acc and `val_<name>` per extra metric."""
    extra = {f"val_{name}": math.nan for name in setup.val_metrics}
    if val_loader is None:
        return {"val_loss": math.nan, "val_acc": math.nan, **extra}
    metrics = {"acc": setup.metric_fn} if setup.metric_fn is not None else {}
    metrics.update(setup.val_metrics)
    with _autocast(model_device(model), setup.amp_dtype):
        result = _eval_loop(model, val_loader, setup.loss_fn, setup.forward_fn, metrics)
    return {f"val_{k}": result.get(k, math.nan) for k in ("loss", "acc", *setup.val_metrics)}


def _run_epoch(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None,
    optimizer: torch.optim.Optimizer,
    setup: _Setup,
    *,
    epoch: int,
    bar_desc: str,
    progress: bool,
    last_good: Path | None,
) -> dict[str, float]:
    """Train one epoch, validate, and return its history row (one progress bar, left behind)."""
    lr = float(optimizer.param_groups[0]["lr"])
    start = time.perf_counter()
    sampler = getattr(train_loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)  # another shuffle each epoch, the same on every process
    num_batches = _safe_len(train_loader)
    bar = tqdm(
        total=num_batches,
        desc=bar_desc,
        unit="batch",
        leave=True,  # one finished line per epoch: a compact record in the notebook
        disable=not progress or not distributed.is_main(),
        dynamic_ncols=True,
    )
    try:
        with bar:
            train_loss, train_acc = _train_epoch(
                model, train_loader, bar, num_batches, optimizer, setup, epoch, last_good
            )
            validated = _validate(model, val_loader, setup)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": validated.pop("val_loss"),
                "val_acc": validated.pop("val_acc"),
                "lr": lr,
            }
            bar.set_postfix(
                {k: f"{row[k]:.4f}" for k in HISTORY_COLUMNS[1:5] if not math.isnan(row[k])}
            )
    except torch.cuda.OutOfMemoryError as err:
        raise _oom_error(err, model_device(model), epoch) from err
    return {**row, "seconds": time.perf_counter() - start, **validated}


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    loss_fn: LossFn | None = None,
    scheduler: Any = None,
    metric_fn: MetricFn | None = accuracy,
    forward_fn: ForwardFn | None = None,
    accum_steps: int = 1,
    amp: bool | str = "auto",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    runs_dir: str | Path | None = None,
    run_info: Mapping[str, Any] | None = None,
    patience: int | None = None,
    monitor: str = "val_acc",
    restore_best: bool = False,
    progress: bool = True,
    desc: str | None = None,
    val_metrics: Mapping[str, MetricFn] | None = None,
) -> pd.DataFrame:
    """Train `model` for `num_epochs` epochs and return the history, one row per epoch.

    Args:
        loss_fn: `loss_fn(outputs, targets)` -> batch mean; default `nn.CrossEntropyLoss()`.
            If it has `on_train_epoch_start()` / `on_train_epoch_end()` methods, they are
            called before and after each epoch's training batches (validation comes after
            the end); an error the end raises stops `fit` before the epoch is recorded.
        scheduler: stepped once per epoch; `ReduceLROnPlateau` gets the monitored value and
            needs `mode="max"` for an accuracy monitor, `mode="min"` for a loss.
        metric_fn: `metric_fn(outputs, targets)` -> fraction (default top-1 accuracy on
            logits); None leaves the accuracy columns NaN.
        forward_fn: `forward_fn(model, inputs)` -> outputs; default `model(inputs)`.
        accum_steps: micro-batches per optimizer step (the loss is divided accordingly).
        amp: mixed precision, CUDA only (see `amp_settings`); off on a CPU without error.
        checkpoint_dir: folder for `last.pt` (every epoch) and `best.pt` (best `monitor`),
            plus `settings.json` (what shaped the run, see `labkit.training.runs.run_settings`).
        resume: continue from `checkpoint_dir/last.pt` (after a dropped kernel, say) up to
            `num_epochs` in total. The run's settings, `num_epochs` among them, must be the
            ones the checkpoint was written with: other settings raise `RunSettingsError`
            naming them.
        runs_dir: instead of `checkpoint_dir`, a folder of runs: this run lives in
            `runs_dir/<digest of its settings>` and resumes from there, so re-running the
            same call resumes and any change of settings starts a separate run. A printed
            line names the folder.
        run_info: settings that shape the run but that `fit` cannot see (e.g. `{"seed": 0}`),
            recorded and compared with the rest.
        patience: stop after this many epochs without improvement of `monitor`.
        monitor: one of `MONITORS`; losses are minimised, accuracies maximised.
        restore_best: load the best epoch's weights at the end (default: keep the last).
        progress: one tqdm bar per epoch; False draws nothing.
        desc: label on the progress bars (e.g. the model's name).
        val_metrics: more `metric_fn`s measured on `val_loader` after each epoch, each a
            column `val_<name>` after `HISTORY_COLUMNS` (e.g. the fraction of test triplets
            that still violate the margin). Their names are part of a run's settings.

    Returns:
        DataFrame with columns `HISTORY_COLUMNS` (NaN where not measured), then one column per
        `val_metrics` entry; `attrs["best_epoch"]`
        (None when `monitor` was never measured), `attrs["monitor"]` and `attrs["run_dir"]`
        (the checkpoint folder, None without one).
    """
    if runs_dir is not None and checkpoint_dir is not None:
        raise ValueError("pass checkpoint_dir= (one run's folder) or runs_dir=, not both")
    _check_args(
        num_epochs=num_epochs,
        accum_steps=accum_steps,
        monitor=monitor,
        patience=patience,
        restore_best=restore_best,
        scheduler=scheduler,
        has_val=val_loader is not None,
        has_metric=metric_fn is not None,
        resume=resume,
        checkpoint_dir=checkpoint_dir if runs_dir is None else runs_dir,
    )
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    settings: dict[str, Any] = {}  # recorded only where a checkpoint is kept
    if checkpoint_dir is not None or runs_dir is not None:
        settings = run_settings(
            distributed.unwrap(model),
            optimizer,
            scheduler,
            train_loader,
            num_epochs=num_epochs,
            accum_steps=accum_steps,
            loss_fn=loss_fn,
            val_loader=val_loader,
            extra={
                "monitor": monitor,
                "patience": patience,
                **({"val_metrics": sorted(val_metrics)} if val_metrics else {}),
                **(run_info or {}),
            },
        )
    if runs_dir is not None:
        checkpoint_dir, resume = Path(runs_dir) / settings_digest(settings), True
        if (Path(runs_dir) / "last.pt").is_file() and distributed.is_main():
            print(
                f"note: {shown_path(Path(runs_dir) / 'last.pt')} was written by an earlier labkit "
                "without a record of its settings, so it is not resumed; delete it to save space"
            )
    amp_dtype, scaler = amp_settings(model_device(model), amp)
    setup = _Setup(
        loss_fn,
        metric_fn,
        forward_fn or _forward,
        dict(val_metrics or {}),
        accum_steps,
        amp_dtype,
        scaler,
    )
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    parts = _Trainables(
        model, optimizer, scheduler, scaler, getattr(train_loader, "generator", None)
    )
    records = _resume(folder, parts, settings) if resume else []
    if folder is not None and not records and distributed.is_main():
        write_settings(folder, settings)
    best_epoch, best_state = _best_epoch(records, monitor), None
    for epoch in range(len(records) + 1, num_epochs + 1):
        if _should_stop(records, best_epoch, patience):
            break
        last_good = folder / "last.pt" if folder and (folder / "last.pt").is_file() else None
        row = _run_epoch(
            model,
            train_loader,
            val_loader,
            optimizer,
            setup,
            epoch=epoch,
            bar_desc=f"{desc or 'epoch'} {epoch}/{num_epochs}",
            progress=progress,
            last_good=last_good,
        )
        records.append(row)
        _step_scheduler(scheduler, row[monitor])
        best = None if best_epoch is None else records[best_epoch - 1][monitor]
        improved = _is_better(row[monitor], best, _monitor_mode(monitor))
        if improved:
            best_epoch = epoch
            best_state = _cpu_copy(distributed.unwrap(model).state_dict()) if restore_best else None
        if folder is not None:
            if distributed.is_main():  # rank 0 alone writes; the others wait for the files
                _save_epoch(folder, parts, records, improved, monitor, settings)
            distributed.barrier()
    if restore_best and best_epoch is not None:
        _restore_best(model, best_state, folder)
    extra = [f"val_{name}" for name in setup.val_metrics]
    history = pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS + extra)
    history.attrs.update(best_epoch=best_epoch, monitor=monitor, run_dir=folder)
    return history


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def _save_epoch(
    folder: Path,
    parts: _Trainables,
    records: list[dict],
    improved: bool,
    monitor: str,
    settings: dict[str, Any],
) -> None:
    epoch = records[-1]["epoch"]
    if improved:
        best = {
            "model": distributed.unwrap(parts.model).state_dict(),
            "epoch": epoch,
            "monitor": monitor,
            "value": records[-1][monitor],
        }
        save_atomic(best, folder / "best.pt")
    state = {
        **parts.state(),
        "epoch": epoch,
        "history": [dict(row) for row in records],
        "settings": json.dumps(settings, sort_keys=True),
        "rng": rng_state(),  # last, after everything this epoch drew from the generators
    }
    save_atomic(state, folder / "last.pt")


def _restore_best(model: nn.Module, best_state: dict | None, folder: Path | None) -> None:
    if best_state is None:  # the best epoch came before a resume: it lives in best.pt
        if folder is None or not (folder / "best.pt").is_file():
            raise FileNotFoundError(f"restore_best: no best.pt in {folder}; the weights stay last")
        best_state = load_checkpoint(folder / "best.pt")["model"]
    distributed.unwrap(model).load_state_dict(best_state)
