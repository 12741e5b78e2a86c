"""Memory of one training step, measured the same way on any device.

`step_memory` runs one forward and backward pass and counts bytes of parameters, of gradients,
and of the tensors autograd saves for backward (the activations), via
`torch.autograd.graph.saved_tensors_hooks`. On CUDA it adds the allocator's peak.

`fit_micro_batch` lowers a recipe's micro-batch to what a memory budget holds, raising its
accumulation so that the effective batch is unchanged; `per_image_bytes` measures what it needs.

Used in: 02_densenet_resnext (why DenseNet's concatenations cost memory), 04_bcnn_hbp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from labkit.training.model_utils import model_device, to_device, train_mode
from labkit.training.recipe import Recipe


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def step_memory(
    model: nn.Module,
    inputs: Any,
    targets: Any,
    loss_fn: Callable | None = None,
    *,
    forward_fn: Callable | None = None,
) -> dict[str, int | None]:
    """Bytes used by one training step (forward + backward) of `model` on this batch.

    Activations are the distinct storages saved for backward during the model's forward
    (shared tensors count once; parameters, and the loss's own small buffers, are left out).
    The model's training flags, buffers (e.g. batch-norm statistics) and gradients are
    restored afterwards.

    Returns:
        {"params", "grads", "activations", "total" (their sum), "peak_cuda" (allocator peak
        during the step on CUDA, else None)}, all in bytes.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    forward_fn = forward_fn or (lambda m, x: m(x))
    device = model_device(model)
    inputs, targets = to_device((inputs, targets), device)
    params = list(model.parameters())
    param_keys = {_storage_key(p) for p in params}
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key not in param_keys:
            saved[key] = key[1]
        return tensor

    old_grads = [p.grad for p in params]
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with train_mode(model):
            for p in params:
                p.grad = None
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                outputs = forward_fn(model, inputs)
            loss_fn(outputs, targets).backward()
        if cuda:
            torch.cuda.synchronize(device)
        grads = _tensor_bytes(p.grad for p in params if p.grad is not None)
    finally:
        for p, grad in zip(params, old_grads, strict=True):
            p.grad = grad
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    result = {"params": _tensor_bytes(params), "grads": grads, "activations": sum(saved.values())}
    result["total"] = sum(result.values())
    result["peak_cuda"] = torch.cuda.max_memory_allocated(device) if cuda else None
    return result


def fit_micro_batch(
    recipe: Recipe, bytes_per_image: float, budget_bytes: float, fixed_bytes: float = 0.0
) -> Recipe:
    """`recipe` with the largest micro-batch that fits `budget_bytes`, the effective batch kept.

    A step of b images needs `fixed_bytes + b * bytes_per_image` (the fixed part: weights,
    gradients, the optimiser's state; per image: the activations autograd saves, see
    `step_memory` and `per_image_bytes`). The micro-batch is `effective_batch / k` for the
    smallest k that divides the effective batch and fits; accum_steps becomes k.

    Raises:
        MemoryError: not even one image fits; the message names the bytes and what to change.
    """
    effective = recipe.effective_batch
    for steps in range(1, effective + 1):
        if effective % steps == 0:
            micro = effective // steps
            if fixed_bytes + micro * bytes_per_image <= budget_bytes:
                return replace(recipe, batch_size=micro, accum_steps=steps)
    need = (fixed_bytes + bytes_per_image) / 2**20
    raise MemoryError(
        f"one image needs {need:.0f} MiB with the weights ({fixed_bytes / 2**20:.0f} MiB), over "
        f"the {budget_bytes / 2**20:.0f} MiB free: use a smaller image size or model in the "
        "lab's first cell (start(...)), mixed precision, or a larger card"
    )


def per_image_bytes(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, **step: Any
) -> tuple[float, float]:
    """(fixed bytes, bytes per image) of a training step of `model`, from two measured steps
    (`step_memory`) on the first image and the first two of `inputs`; the CUDA allocator's
    peak where it is measured (it holds the workspace too), else the counted total."""

    def used(n: int) -> float:
        # copies: a slice's storage is the whole batch's, which step_memory would count
        memory = step_memory(model, inputs[:n].clone(), targets[:n].clone(), **step)
        return float(memory["peak_cuda"] or memory["total"])

    one, two = used(1), used(2)
    per_image = max(two - one, 0.0)
    return one - per_image, per_image
