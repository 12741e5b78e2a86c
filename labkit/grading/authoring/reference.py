"""Tools for checks cells that compare a student's module with an independent reference.

A checks cell cannot run a student's class in the grader's process (only values cross from the
kernel), so a lab's notebook runs the student's module on a fixed input and hands over its output
and its `state_dict()`. The check then loads those weights into a reference written elsewhere
(torchvision's own DenseNet layer, ResNet bottleneck, ...) with `load_weights`, runs the
reference on the same input and compares the two outputs.

Used in: the checks cells of 02_densenet_resnext (Questions 1a and 2a).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["load_weights"]


def _modules(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """A state dict grouped by module: {module prefix: {kind: tensor}}, in the dict's order."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix, _, kind = key.rpartition(".")
        modules.setdefault(prefix, {})[kind] = torch.as_tensor(value)
    return modules


def _signature(tensors: Mapping[str, torch.Tensor]) -> tuple:
    return tuple(sorted((kind, tuple(t.shape)) for kind, t in tensors.items()))


def _describe(tensors: Mapping[str, torch.Tensor]) -> str:
    """A layer in words: "a batch norm over 20 channels", "a convolution of weight (48, 20, 1, 1)
    without bias", ... (else its tensors' kinds and shapes)."""
    weight = tensors.get("weight")
    bias = "with" if "bias" in tensors else "without"
    if "running_mean" in tensors:
        return f"a batch norm over {tuple(tensors['running_mean'].shape)[0]} channels"
    if weight is not None and weight.ndim >= 3:
        return f"a convolution of weight {tuple(weight.shape)} {bias} bias"
    if weight is not None and weight.ndim == 2:
        return f"a linear layer of weight {tuple(weight.shape)} {bias} bias"
    return ", ".join(f"{kind} of shape {tuple(t.shape)}" for kind, t in tensors.items())


def load_weights(reference: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Copy a student's weights (`state`, a module's `state_dict()`) into `reference`, in place.

    Layers are matched by what they hold: the kinds of their tensors (`weight`, `bias`,
    `running_mean`, ...) and their shapes, in the order the student's module registered them
    (two batch norms of one size are taken in order). So any attribute names and any nesting
    work. `what` names the student's module in messages (e.g. "DenseLayer(20, 12)").

    Raises AssertionError, with a message a student can act on, when the reference has a layer
    the student's module lacks (a missing layer, a wrong channel count or kernel size, a bias
    the design leaves out) or the student's module has a layer the reference does not.
    """
    if not isinstance(state, Mapping):
        raise AssertionError(f"{what}: expected its state_dict(), got a {type(state).__name__}")
    available: dict[tuple, list[str]] = {}
    mine = _modules(state)
    for prefix, tensors in mine.items():
        available.setdefault(_signature(tensors), []).append(prefix)
    loaded = {}
    for prefix, tensors in _modules(reference.state_dict()).items():
        found = available.get(_signature(tensors))
        if not found:
            raise AssertionError(
                f"{what} lacks {_describe(tensors)}, which the reference has "
                f"({prefix or 'itself'}): check the order of the layers, their channels, kernel "
                "sizes, groups and bias=False"
            )
        theirs = mine[found.pop(0)]
        for kind, target in tensors.items():
            loaded[f"{prefix}.{kind}" if prefix else kind] = theirs[kind].to(target.dtype)
    extra = [prefix for prefixes in available.values() for prefix in prefixes]
    if extra:
        raise AssertionError(
            f"{what} has layers the reference does not: {', '.join(extra[:4])} "
            f"({_describe(mine[extra[0]])}): check the order of the layers and bias=False"
        )
    reference.load_state_dict(loaded)
