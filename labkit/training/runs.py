"""A run's identity: the settings that shape it, so that a run never resumes under other settings.

`run_settings` describes a run as plain data: the model (class, builder and its arguments, a
digest of its parameter shapes), its `Recipe`, the optimiser and scheduler as built (each
parameter group's size and starting rate), the loss (its class and plain settings, such as a
margin or class weights), both loaders (batch size, sampler, shuffling seed, and a fingerprint
of the data: contents, subset, augmentation), and whatever the caller states (the global seed,
which backbone a stage starts from). `labkit.training.callbacks.Checkpoints` stores it in every
checkpoint; resuming under different settings raises `RunSettingsError`, and with
`per_settings=True` each set of settings gets a folder of its own, named by `settings_digest`.

Used in: labkit.training.callbacks.Checkpoints (every lab).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.atomic import write_text_atomic
from labkit.training.recipe import Recipe

__all__ = [
    "RunSettingsError",
    "data_fingerprint",
    "is_current",
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
# optimiser options that choose an implementation, not the arithmetic, and come and go with
# PyTorch versions
_IMPLEMENTATION_ONLY = {"foreach", "fused", "capturable", "differentiable"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class RunSettingsError(ValueError):
    """A checkpoint was written under other settings than the run that would resume from it."""


def _name(obj: Any) -> str:
    """A function's or class's module and qualified name: the same in every process."""
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', None) or type(obj).__module__}.{qualname}"


def _tensor_digest(tensor: torch.Tensor) -> str:
    digest = hashlib.sha256(str(tuple(tensor.shape)).encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """`value` as JSON data: numbers, strings, booleans, None, lists and string-keyed dicts.

    A tensor of more than one element becomes a digest of its contents; a function or class
    its qualified name; any other object its class's name.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.Tensor):
        return _plain(value.item()) if value.numel() == 1 else f"tensor {_tensor_digest(value)}"
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # NumPy scalars
        return _plain(value.item())
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, torch.dtype | torch.device):
        return str(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return _name(value)
    return f"<{_name(type(value))}>"  # another object: only its kind


def _stable_repr(obj: Any) -> str:
    """`repr(obj)` without memory addresses, which differ from one process to the next."""
    return _ADDRESS.sub("", repr(obj))


def _model(model: nn.Module) -> dict[str, Any]:
    shapes = [[name, list(p.shape)] for name, p in model.named_parameters()]
    found: dict[str, Any] = {"class": type(model).__name__}
    builder = getattr(model, "labkit_builder", None)
    if builder is not None:
        name, arguments = builder
        found |= {"builder": name, "arguments": _plain(arguments)}
    digest = hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:12]
    return found | {"parameter shapes": digest}  # also catches a model edited after building


def _optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = []
    for group in optimizer.param_groups:
        # the rate a run starts from; a scheduler keeps it as initial_lr while it changes lr
        group.setdefault("initial_lr", group["lr"])
        skip = {"params", "lr", *_IMPLEMENTATION_ONLY}
        if "max_momentum" in group:  # momentum cycled by OneCycleLR: its range is the setting
            skip |= {"momentum", "betas"}
        kept = {key: _plain(value) for key, value in group.items() if key not in skip}
        groups.append({"parameters": len(group["params"])} | kept)
    return {"class": type(optimizer).__name__, "param_groups": groups}


def _without_progress(state: Any) -> Any:
    """A scheduler's state without its counters, at every level (SequentialLR nests them)."""
    if isinstance(state, Mapping):
        return {k: _without_progress(v) for k, v in state.items() if k not in _SCHEDULER_PROGRESS}
    if isinstance(state, (list, tuple)):
        return [_without_progress(v) for v in state]
    return state


def _scheduler(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    state = scheduler.state_dict() if hasattr(scheduler, "state_dict") else {}
    return {"class": type(scheduler).__name__, **_plain(_without_progress(state))}


def _loss(fn: Any) -> Any:
    """A loss by its kind and plain settings: a module's public numbers and strings (a margin,
    a miner's name, label smoothing) and buffers (class weights); a function by its name."""
    if isinstance(fn, nn.Module):
        fields = {
            k: _plain(v)
            for k, v in vars(fn).items()
            if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str))
        }
        buffers = {name: _plain(buffer) for name, buffer in fn.named_buffers()}  # class weights
        return {"class": type(fn).__name__, **fields, **buffers}
    return _name(fn)


def data_fingerprint(dataset: Any) -> dict[str, Any]:
    """What identifies a data set: its kind, size, contents, selection and augmentation.

    A dataset with an `images` tensor (a `TensorImageDataset`) is hashed by content (images
    and labels, so another data source, cap or image size changes it); one that wraps another
    (`.dataset`, e.g. a `TripletDataset` or a `Subset`) is described by its own size and
    indices and by the one it wraps.
    """
    found: dict[str, Any] = {"class": type(dataset).__name__}
    with contextlib.suppress(TypeError):  # an iterable dataset has no length
        found["size"] = len(dataset)
    indices = getattr(dataset, "indices", None)
    if indices is not None:  # a Subset: which items it picks
        found["indices"] = _tensor_digest(torch.as_tensor(list(indices)))
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
        found["image shape"] = list(images.shape[1:])
        found["contents"] = f"{_tensor_digest(images)} {_tensor_digest(labels)}"
    transform = getattr(dataset, "transform", None)
    if transform is not None:
        found["transform"] = _stable_repr(transform)
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset:
        found["wraps"] = data_fingerprint(inner)
    return found


def _loader(loader: Iterable | None) -> dict[str, Any] | None:
    """How a loader draws its batches, and the data it draws them from."""
    if loader is None:
        return None
    found: dict[str, Any] = {"batch_size": getattr(loader, "batch_size", None)}
    sampler = getattr(loader, "sampler", None)
    if sampler is not None:
        found["sampler"] = type(sampler).__name__  # shuffled or in order
    batch_sampler = getattr(loader, "batch_sampler", None)
    if found["batch_size"] is None and batch_sampler is not None:  # e.g. a P x K sampler
        found["batch_sampler"] = {"class": type(batch_sampler).__name__} | {
            k: _plain(v) for k, v in vars(batch_sampler).items() if isinstance(v, (int, float))
        }
    with contextlib.suppress(TypeError):
        found["batches"] = len(loader)  # type: ignore[arg-type]
    dataset = getattr(loader, "dataset", None)
    found["data"] = data_fingerprint(dataset) if dataset is not None else None
    generator = getattr(loader, "generator", None)
    found["shuffle_seed"] = generator.initial_seed() if generator is not None else None
    return found


def run_settings(
    model: nn.Module,
    recipe: Recipe,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    train_loader: Iterable,
    *,
    loss_fn: Any = None,
    val_loader: Iterable | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that shapes a run's trajectory and its history, as JSON data.

    Call it before training: it records each optimiser group's starting rate as `initial_lr`
    (as PyTorch's schedulers do), so that the same settings read the same after a schedule has
    changed the rate.

    Args:
        loss_fn: the loss `fit` uses (None: the recipe's cross-entropy).
        val_loader: the data the history's `val_*` columns are measured on.
        extra: what the caller states and `fit` cannot see, recorded as given, e.g.
            `{"seed": 0}`; ValueError for a name that the settings already record.

    Returns:
        {"model", "recipe", "optimizer", "scheduler", "loss", "train", "validation", **extra};
        "train" and "validation" describe each loader's batches, sampler, shuffling seed and
        data (see `data_fingerprint`).
    """
    settings = {
        "model": _model(model),
        "recipe": asdict(recipe),
        "optimizer": _optimizer(optimizer),
        "scheduler": _scheduler(scheduler),
        "loss": _loss(loss_fn) if loss_fn is not None else None,
        "train": _loader(train_loader),
        "validation": _loader(val_loader),
    }
    clashes = sorted(settings.keys() & dict(extra or {}).keys())
    if clashes:
        raise ValueError(f"stated settings {clashes} would hide recorded ones; name them otherwise")
    return _plain(settings | dict(extra or {}))


def is_current(settings: Mapping[str, Any] | None) -> bool:
    """Whether `settings` (a run's settings.json) were written by this layout of runs, which
    records the run's `Recipe`; runs of an earlier labkit are named, not resumed."""
    return settings is not None and "recipe" in settings


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
    write_text_atomic(folder / "settings.json", json.dumps(_plain(settings), indent=1) + "\n")
