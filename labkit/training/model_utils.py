"""Small helpers around a model: mode changes that restore flags, its device, moving batches.

Used in: labkit.training.loop, labkit.triplets.embeddings, labkit.training.memory (every lab
through them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["eval_mode", "model_device", "to_device", "train_mode"]


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    flags = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag


def eval_mode(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Put `model` in eval mode, then restore every submodule's own training flag on exit."""
    return _mode(model, False)


def train_mode(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Put `model` in train mode, then restore every submodule's own training flag on exit."""
    return _mode(model, True)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter.

    Raises:
        ValueError: the model has no parameters.
    """
    try:
        return next(model.parameters()).device
    except StopIteration:
        raise ValueError(f"{type(model).__name__} has no parameters; nothing to train") from None


def to_device(data: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors inside nested tuples, lists and dicts, to `device`."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, (list, tuple)):
        return type(data)(to_device(item, device) for item in data)
    if isinstance(data, dict):
        return {key: to_device(value, device) for key, value in data.items()}
    return data
