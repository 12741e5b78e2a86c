"""The settings that shape a training run, so that a run never resumes under other settings.

`run_settings` describes a run as plain data: the model's builder and its arguments, the
optimiser and its hyper-parameters, the scheduler and its settings, the loss function and its
settings (a margin), the number of epochs, the
batch size, the data (a fingerprint of the training set's contents and its augmentation), the
loader's shuffling seed, and whatever the caller adds (the global seed). `labkit.train.fit`
stores it in every checkpoint; resuming under different settings raises `RunSettingsError`,
and with `runs_dir=` each set of settings gets a folder of its own, named by `settings_digest`.

Used in: labkit.train.fit (every lab).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "RunSettingsError",
    "data_fingerprint",
    "run_settings",
    "settings_differences",
    "settings_digest",
]

# scheduler state that counts progress rather than configuring the schedule
_SCHEDULER_PROGRESS = {
    "last_epoch",
    "_step_count",
    "_last_lr",
    "_get_lr_called_within_step",
    "_is_initial",
    "best",
    "num_bad_epochs",
    "cooldown_counter",
    "optimizer",
}


class RunSettingsError(ValueError):
    """A checkpoint was written under other settings than the run that would resume from it."""


def _plain(value: Any) -> Any:
    """`value` as JSON data: numbers, strings, booleans, None, lists and string-keyed dicts."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return _plain(value.item())
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # NumPy scalars
        return _plain(value.item())
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, torch.dtype | torch.device):
        return str(value)
    return f"<{type(value).__name__}>"  # an object (a function, a module): only its kind


def _model(model: nn.Module) -> dict[str, Any]:
    builder = getattr(model, "labkit_builder", None)
    if builder is not None:
        name, arguments = builder
        return {"builder": name, "arguments": _plain(arguments)}
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters()]
    digest = hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:12]
    return {"class": type(model).__name__, "parameter shapes": digest}


def _optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = []
    for group in optimizer.param_groups:
        skip = {"params"}
        if "initial_lr" in group:  # a scheduler owns the current rate; its start is the setting
            skip.add("lr")
        if "max_momentum" in group:  # a cycled momentum (OneCycleLR) likewise
            skip |= {"momentum", "betas"}
        kept = {key: _plain(value) for key, value in group.items() if key not in skip}
        groups.append({"parameters": len(group["params"])} | kept)
    return {"class": type(optimizer).__name__, "param_groups": groups}


def _scheduler(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    state = scheduler.state_dict() if hasattr(scheduler, "state_dict") else {}
    kept = {k: _plain(v) for k, v in state.items() if k not in _SCHEDULER_PROGRESS}
    return {"class": type(scheduler).__name__, **kept}


def _function(fn: Any) -> Any:
    """A loss function by name and settings: a partial's keywords, a module's plain fields."""
    if isinstance(fn, functools.partial):
        keywords = {k: _function(v) if callable(v) else _plain(v) for k, v in fn.keywords.items()}
        return {"function": _function(fn.func), **keywords, "args": _plain(list(fn.args))}
    if isinstance(fn, nn.Module):
        fields = {
            k: _plain(v)
            for k, v in vars(fn).items()
            if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str))
        }
        return {"class": type(fn).__name__, **fields}
    return getattr(fn, "__qualname__", type(fn).__name__)


def data_fingerprint(dataset: Any) -> dict[str, Any]:
    """What identifies a training set: its kind, size, contents and augmentation.

    A dataset with an `images` tensor (a `TensorImageDataset`) is hashed by content (images
    and labels, so another data source, cap or image size changes it); one that wraps another
    (`.dataset`, e.g. a `TripletDataset`) is described by the one it wraps.
    """
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset:
        return {"wrapper": type(dataset).__name__, **data_fingerprint(inner)}
    found: dict[str, Any] = {"class": type(dataset).__name__}
    with contextlib.suppress(TypeError):  # an iterable dataset has no length
        found["size"] = len(dataset)
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
        digest = hashlib.sha256()
        for tensor in (images, labels):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        found["image shape"] = list(images.shape[1:])
        found["contents"] = digest.hexdigest()[:16]
    transform = getattr(dataset, "transform", None)
    if transform is not None:
        found["transform"] = repr(transform)
    return found


def _batch_size(loader: Iterable) -> Any:
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is not None:
        return batch_size
    batch_sampler = getattr(loader, "batch_sampler", None)
    if batch_sampler is not None:  # e.g. a P x K sampler: its own description
        sizes = {
            k: _plain(v) for k, v in vars(batch_sampler).items() if isinstance(v, (int, float))
        }
        return {"batch sampler": type(batch_sampler).__name__, **sizes}
    return None


def run_settings(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    train_loader: Iterable,
    *,
    num_epochs: int,
    accum_steps: int = 1,
    loss_fn: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that shapes a run's trajectory, as JSON data (call it before training).

    Args:
        extra: settings that `fit` cannot see, recorded as given, e.g. `{"seed": 0}`.

    Returns:
        {"model", "optimizer", "scheduler", "loss", "num_epochs", "accum_steps",
        "batch_size", "batches_per_epoch", "data", "shuffle_seed", **extra}.
    """
    generator = getattr(train_loader, "generator", None)
    try:
        batches: int | None = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        batches = None
    dataset = getattr(train_loader, "dataset", None)
    settings = {
        "model": _model(model),
        "optimizer": _optimizer(optimizer),
        "scheduler": _scheduler(scheduler),
        "loss": _function(loss_fn) if loss_fn is not None else None,
        "num_epochs": num_epochs,
        "accum_steps": accum_steps,
        "batch_size": _batch_size(train_loader),
        "batches_per_epoch": batches,
        "data": data_fingerprint(dataset) if dataset is not None else None,
        "shuffle_seed": generator.initial_seed() if generator is not None else None,
    }
    return _plain(settings | dict(extra or {}))


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short, stable name for `settings`: 8 hex digits of the SHA-256 of its sorted JSON."""
    text = json.dumps(_plain(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _flatten(settings: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(settings, Mapping):
        flat: dict[str, Any] = {}
        for key, value in settings.items():
            flat |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if isinstance(settings, list) and any(isinstance(v, (Mapping, list)) for v in settings):
        flat = {}
        for i, value in enumerate(settings):
            flat |= _flatten(value, f"{prefix}[{i}]")
        return flat
    return {prefix: settings}


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Lines `name: saved -> current` for every setting that differs (nested names dotted)."""
    old, new = _flatten(_plain(saved)), _flatten(_plain(current))
    missing = "(not set)"
    return [
        f"{key}: {old.get(key, missing)} -> {new.get(key, missing)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key, missing) != new.get(key, missing)
    ]


def write_settings(folder: Path, settings: Mapping[str, Any]) -> None:
    """Keep `settings.json` beside a run's checkpoints, for people to read."""
    from labkit.atomic import write_text_atomic

    write_text_atomic(folder / "settings.json", json.dumps(_plain(settings), indent=1) + "\n")
