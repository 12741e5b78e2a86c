"""Values turned into plain data in a student's kernel, so that they reach the grader as data.

This module is the kernel side of the value export (`labkit.grading.worker.decoder` is the
worker's side).
`export_code` sends its source text into the student's kernel, runs it there in a fresh namespace
and calls `export(names, path, globals())`: each value becomes Python scalars and containers, CPU
tensors and tagged dicts (`{"~": tag, ...}`; modules as builder + state dict + structure), written
with `torch.save` so that the grader reads it back with `weights_only=True`.

It imports nothing from labkit (a student may have monkeypatched it) and nothing new into the
kernel: the standard library and torch only, numpy and pandas only where the student's code has
already loaded them (`sys.modules`). The grader imports it too, for the tags and `plain`/`settings`,
the one rule for what counts as a module's simple setting.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch

TAG = "~"  # the key that marks a tagged dict: {TAG: kind, ...}; the kinds:
COMPLEX = "complex"
TENSOR = "tensor"
MODULE = "module"
SIZE = "size"
DTYPE = "dtype"
DEVICE = "device"
NDARRAY = "ndarray"
NPSCALAR = "npscalar"
DATAFRAME = "dataframe"
SERIES = "series"
SET = "set"
DICT = "dict"
RANGE = "range"
UNEXPORTABLE = "unexportable"
MISSING = "missing"

FORMAT = 1  # the value of "labkit_export" in an export file
MAX_ITEMS = 1_000_000  # values encoded per export, all names together
MAX_DEPTH = 24  # containers nested deeper are not exported
MAX_ERROR_CHARS = 300  # of the message kept for a value whose encoding failed


def type_name(obj: object) -> str:
    """The qualified name of an object's class, e.g. `torch.nn.modules.conv.Conv2d`."""
    return type(obj).__module__ + "." + type(obj).__qualname__


def plain(value: Any, depth: int = 0) -> bool:
    """Whether a module attribute is a simple setting: a scalar, or a short tuple/list of them."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    return (
        type(value) in (tuple, list)
        and len(value) <= 16
        and depth < 3
        and all(plain(v, depth + 1) for v in value)
    )


def settings(module: torch.nn.Module) -> dict[str, Any]:
    """The simple settings of one module (in_channels, stride, groups, ..., whether it has bias)."""
    found = {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_") and k != "training" and plain(v)
    }
    if "bias" in module._parameters:
        found["bias"] = module._parameters["bias"] is not None
    return found


def tensor(x: torch.Tensor) -> torch.Tensor:
    """A plain, dense CPU copy holding only the tensor's own elements (not a view's base)."""
    t = torch.Tensor.as_subclass(x, torch.Tensor).detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    return t.cpu().clone()


class _Encoder:
    """Encodes values into plain data, all against one budget of `MAX_ITEMS` values."""

    def __init__(self) -> None:
        self.budget = MAX_ITEMS
        self.np = sys.modules.get("numpy")
        self.pd = sys.modules.get("pandas")

    def module(self, m: torch.nn.Module) -> dict[str, Any]:
        """A module as its type, builder, training flag, state dict and per-submodule settings."""
        structure = [
            [name, type_name(sub), self.encode(settings(sub), 1)] for name, sub in m.named_modules()
        ]
        state = [[k, tensor(v)] for k, v in m.state_dict().items()]
        builder = getattr(m, "labkit_builder", None)
        return {
            TAG: MODULE,
            "type": type_name(m),
            "training": bool(m.training),
            "builder": None if builder is None else self.encode(builder, 1),
            "state_dict": state,
            "structure": structure,
        }

    def encode(self, x: Any, depth: int = 0) -> Any:
        """`x` as plain data; ValueError past the budget or `MAX_DEPTH`."""
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DEPTH:
            raise ValueError("too large or too deeply nested to export")
        t, np, pd = type(x), self.np, self.pd
        if x is None or t in (bool, int, float, str, bytes):
            return x
        if isinstance(x, int):  # subclasses cross as the built-in value they hold
            return int.__int__(x)
        if isinstance(x, float):
            return float.__float__(x)
        if isinstance(x, str):
            return str.__str__(x)
        if t is complex:
            return {TAG: COMPLEX, "v": [x.real, x.imag]}
        if isinstance(x, torch.Tensor):
            return {TAG: TENSOR, "v": tensor(x), "parameter": isinstance(x, torch.nn.Parameter)}
        if isinstance(x, torch.nn.Module):
            return self.module(x)
        if isinstance(x, torch.Size):
            return {TAG: SIZE, "v": [int(i) for i in x]}
        if isinstance(x, torch.dtype):
            return {TAG: DTYPE, "v": str(x)}
        if isinstance(x, torch.device):
            return {TAG: DEVICE, "v": str(x)}
        if np is not None and isinstance(x, np.ndarray):
            a = np.asarray(x)
            if a.dtype.kind in "biufc":  # numbers cross as a tensor
                v = torch.from_numpy(np.ascontiguousarray(a)).clone()
                return {TAG: NDARRAY, "v": v, "dtype": str(a.dtype)}
            v = self.encode(a.tolist(), depth + 1)
            return {TAG: NDARRAY, "v": v, "dtype": str(a.dtype), "shape": list(a.shape)}
        if np is not None and isinstance(x, np.generic):
            return {TAG: NPSCALAR, "v": self.encode(x.item(), depth + 1), "dtype": str(x.dtype)}
        if pd is not None and isinstance(x, pd.DataFrame):
            return {TAG: DATAFRAME, "v": self.encode(x.to_dict(orient="split"), depth + 1)}
        if pd is not None and isinstance(x, pd.Series):
            split = {"index": list(x.index), "data": list(x), "name": x.name}
            return {TAG: SERIES, "v": self.encode(split, depth + 1)}
        if isinstance(x, (list, tuple)):
            if len(x) > self.budget:
                raise ValueError("too large to export")
            items = [self.encode(i, depth + 1) for i in x]
            return items if isinstance(x, list) else tuple(items)
        if isinstance(x, (set, frozenset)):
            items = [self.encode(i, depth + 1) for i in x]
            return {TAG: SET, "v": items, "frozen": isinstance(x, frozenset)}
        if isinstance(x, dict):
            if len(x) > self.budget:
                raise ValueError("too large to export")
            pairs = [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in x.items()]
            return {TAG: DICT, "v": pairs}
        if isinstance(x, range):
            return {TAG: RANGE, "v": [x.start, x.stop, x.step]}
        return {TAG: UNEXPORTABLE, "type": type_name(x)}


def encode_names(names: Sequence[str], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Each name's value as plain data; a missing name or a failed encoding is said per name."""
    encoder, out = _Encoder(), {}
    for name in names:
        if name not in namespace:
            out[name] = {TAG: MISSING}
            continue
        try:
            out[name] = encoder.encode(namespace[name])
        except BaseException as error:  # whatever goes wrong: say so, export the rest
            message = type(error).__name__ + ": " + str(error)
            out[name] = {
                TAG: UNEXPORTABLE,
                "type": type_name(namespace[name]),
                "error": message[:MAX_ERROR_CHARS],
            }
    return out


def export(names: Sequence[str], path: str, namespace: Mapping[str, Any]) -> None:
    """Write the values of `names` in `namespace` to `path` as plain data, with `torch.save`."""
    torch.save({"labkit_export": FORMAT, "names": encode_names(names, namespace)}, path)
