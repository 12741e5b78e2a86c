"""One training step and its failures: what a batch is scored by (`Task`), mixed precision, a
micro-batch's forward and backward, the optimiser step after `accum_steps` micro-batches, and the
errors that name a remedy (a loss that is no longer finite, a GPU out of memory).

Batches are `(inputs, targets)` pairs; `inputs` and `targets` may be tensors or (nested)
tuples, lists or dicts of tensors.

Used in: labkit.training.loop.fit; `backward_step` in benchmarks/gpu_hbp_448.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.training.metrics import accuracy
from labkit.training.model_utils import model_device

__all__ = [
    "NonFiniteLossError",
    "Task",
    "amp_settings",
    "autocast",
    "backward_step",
    "optimizer_step",
]

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
MetricFn = Callable[[torch.Tensor, Any], float]


@dataclass(frozen=True)
class Task:
    """What a model is trained to do: how a batch goes through it and how it is scored.

    The default is classification: `model(inputs)` gives logits, scored by cross-entropy (with
    the recipe's label smoothing) and top-1 accuracy.
    """

    # loss_fn(outputs, targets) -> the batch mean; None: cross-entropy. Its optional methods
    # on_train_epoch_start() / on_train_epoch_end() are called around each epoch's training
    # batches (validation comes after); an error the end raises stops fit before the epoch
    # is recorded (a mined loss that found no triplet all epoch, say)
    loss_fn: LossFn | None = None
    # metric_fn(outputs, targets) -> a fraction; None leaves the accuracy columns NaN
    metric_fn: MetricFn | None = accuracy
    # forward_fn(model, inputs) -> outputs; None: model(inputs)
    forward_fn: ForwardFn | None = None
    # more metric_fns measured on the validation loader, each a history column val_<name>
    # (e.g. the test triplets still violating the margin); their names are part of a run's
    # settings
    val_metrics: Mapping[str, MetricFn] = field(default_factory=dict)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


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


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """`torch.autocast` to `dtype` on `device`, or nothing when `dtype` is None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """The default `forward_fn`: `model(inputs)`."""
    return model(inputs)


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
    forward_fn = forward_fn or forward
    with autocast(model_device(model), amp_dtype):
        outputs = forward_fn(model, inputs)
        loss = loss_fn(outputs, targets)
    scaled = loss * loss_scale
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return outputs.detach(), loss.detach()


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Step the optimizer (through `scaler` when fp16 needs one) and clear the gradients."""
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def group_size(index: int, num_batches: int | None, accum_steps: int) -> int:
    """Micro-batches in the optimizer step that batch `index` belongs to (the last may be short)."""
    if num_batches is None:
        return accum_steps
    start = index - index % accum_steps
    return min(accum_steps, num_batches - start)


def unpack(batch: Any) -> tuple[Any, Any]:
    """(inputs, targets) of a batch; ValueError naming the remedy for anything else."""
    if not isinstance(batch, (list, tuple)) or len(batch) != 2:
        raise ValueError(
            f"expected batches of (inputs, targets), got {type(batch).__name__}"
            f"{f' of length {len(batch)}' if isinstance(batch, (list, tuple)) else ''}; "
            "make the dataset return (inputs, targets) pairs"
        )
    return batch[0], batch[1]


def batch_size(inputs: Any, targets: Any) -> int:
    """Examples in a batch: the first dimension of the targets, else of the inputs."""
    for item in (targets, inputs):
        if isinstance(item, torch.Tensor) and item.ndim > 0:
            return item.shape[0]
    if isinstance(inputs, (list, tuple)) and inputs:
        return batch_size(inputs[0], None)
    raise ValueError("cannot tell the batch size: neither targets nor inputs is a tensor")


def safe_len(loader: Iterable) -> int | None:
    """`len(loader)`, or None for a loader of unknown length."""
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def nonfinite_error(value: float, epoch: int, step: int, last_good: Path | None) -> Exception:
    """The error for a loss of `value` at `step` of `epoch`, naming the last good checkpoint."""
    where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint saved yet"
    return NonFiniteLossError(
        f"loss is {value} at epoch {epoch}, step {step}; {where}. Lower the learning rate "
        "(e.g. by 10x) and train again: with Checkpoints(runs_dir, per_settings=True) the new "
        "rate is a new run, and the diverged one stays in its own folder"
    )


def oom_error(err: Exception, device: torch.device, epoch: int) -> torch.OutOfMemoryError:
    """Out of memory in `epoch`, with the remedies a lab offers."""
    return torch.cuda.OutOfMemoryError(
        f"out of memory on {device} in epoch {epoch}: make the batch smaller in the lab's first "
        "cell: the lab module's start(...) takes any field of its recipes (e.g. "
        'lab02.start(training={"batch_size": 32})), and a k times smaller batch_size with '
        "accum_steps=k keeps the effective batch. Either change starts a new run. Mixed "
        f"precision (amp=True) needs CUDA. Original error: {err}"
    )
