"""One training step and its failures: what a batch is scored by (`Task`), mixed precision, a
micro-batch's forward and backward, the optimiser step after `accum_steps` micro-batches, and the
errors that name a remedy (a loss that is no longer finite, a GPU out of memory).

Batches are `(inputs, targets)` pairs; `inputs` and `targets` may be tensors or (nested)
tuples, lists or dicts of tensors.

Used in: labkit.training.loop.fit; `backward_step` in benchmarks/gpu_hbp_448.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from labkit.training.metrics import accuracy
from labkit.training.model_utils import model_device

AMP_ENV = "LABKIT_AMP"  # "bfloat16", "float16" or "off": what amp="auto" means on CUDA

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
    supports it (no scaler needed), else fp16 with a `GradScaler`; `"bfloat16"`, `"float16"`
    and `"off"` choose. `"auto"` takes `$LABKIT_AMP` when it is set to one of those (`make
    gpu-check` rehearses both paths).
    """
    if amp == "auto":
        amp = os.environ.get(AMP_ENV) or "auto"
    if amp not in ("auto", True, False, "bfloat16", "float16", "off"):
        raise ValueError(
            f"amp must be 'auto', True, False, 'bfloat16', 'float16' or 'off' (so must "
            f"${AMP_ENV}), got {amp!r}"
        )
    if amp in (False, "off") or device.type != "cuda":
        return None, None
    if amp == "bfloat16" or (amp != "float16" and torch.cuda.is_bf16_supported()):
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

    The loss is multiplied by `loss_scale` before `backward`: a micro-batch of n_i of a step's
    N samples scaled by n_i / N gives, summed, the gradient of the step's whole batch (lab 04,
    Question 3; 1 / k for k equal micro-batches).

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


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    grad_factor: float = 1.0,
) -> None:
    """Step the optimizer (through `scaler` when fp16 needs one) and clear the gradients.

    `grad_factor` multiplies every gradient first (see `MicroBatchShares`); 1.0 touches none.
    """
    if grad_factor != 1.0:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(grad_factor)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class MicroBatchShares:
    """Each micro-batch's share n_i / N of the samples of its optimiser step, as lab 04's
    Question 3 teaches: summed, the scaled gradients are the step's whole-batch gradient also
    when the micro-batches differ in size (an epoch's last, a loader of uneven batches).

    N is known only once the step's last micro-batch is read, so a micro-batch is scaled by
    n_i / N0, with N0 = (the step's first n) x (its micro-batches), and the step's gradient by
    N0 / N before the optimiser uses it (`grad_factor`): 1.0 when the micro-batches are equal.
    """

    def __init__(self) -> None:
        self.nominal = self.samples = 0  # N0 and the samples read so far, of the open step

    def loss_scale(self, n: int, group: int) -> float:
        """The loss scale of a micro-batch of `n` samples in a step of `group` micro-batches."""
        if self.samples == 0:  # the step's first micro-batch
            self.nominal = max(n, 1) * group
        self.samples += n
        return n / self.nominal

    def grad_factor(self) -> float:
        """N0 / N for the step just read; the next micro-batch opens a new step."""
        factor, self.samples = self.nominal / max(self.samples, 1), 0
        return factor


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


def first_rows(item: Any, n: int) -> Any:
    """The first `n` examples of a batch part: tensors sliced, (nested) tuples, lists and dicts
    of them sliced item by item, anything else as it is."""
    if isinstance(item, torch.Tensor):
        return item[:n] if item.ndim > 0 else item
    if isinstance(item, Mapping):
        return {key: first_rows(value, n) for key, value in item.items()}
    if isinstance(item, (list, tuple)):
        rows = [first_rows(value, n) for value in item]
        return type(item)(*rows) if hasattr(item, "_fields") else type(item)(rows)
    return item


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
