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


def _kind(key: str) -> str:
    """The last part of a state-dict key: weight, bias, running_mean, running_var, ..."""
    return key.rsplit(".", 1)[-1]


def load_weights(reference: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Copy a student's weights (`state`, a module's `state_dict()`) into `reference`, in place.

    Tensors are matched by kind (the last part of the key: `weight`, `bias`, `running_mean`, ...)
    and shape, in the order the student's module registered them, so any attribute names and any
    nesting work. `what` names the student's module in messages (e.g. "DenseLayer(20, 12)").

    Raises AssertionError, with a message a student can act on, when the reference has a tensor
    the student's module lacks (a missing layer, a wrong channel count) or the student's module
    has one the reference does not (most often a convolution bias the design leaves out).
    """
    if not isinstance(state, Mapping):
        raise AssertionError(f"{what}: expected its state_dict(), got a {type(state).__name__}")
    mine: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for key, value in state.items():
        tensor = torch.as_tensor(value)
        mine.setdefault((_kind(key), tuple(tensor.shape)), []).append(key)
    loaded = {}
    for key, target in reference.state_dict().items():
        wanted = (_kind(key), tuple(target.shape))
        found = mine.get(wanted)
        if not found:
            raise AssertionError(
                f"{what} has no {wanted[0]} of shape {wanted[1]}, which the reference layer "
                f"needs for {key}: check the layer's channels, kernel sizes and groups"
            )
        loaded[key] = torch.as_tensor(state[found.pop(0)]).to(target.dtype)
    extra = [key for keys in mine.values() for key in keys]
    if extra:
        raise AssertionError(
            f"{what} has tensors the reference layer does not: {', '.join(extra[:4])} "
            "(a convolution with bias=True, or a layer too many?)"
        )
    reference.load_state_dict(loaded)
