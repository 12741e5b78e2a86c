"""Values crossing from a student's kernel to the grader as data, never as objects.

Kernel side: `export_code(names, path)` is source text run in the student's kernel right after an
answer cell. It imports nothing from labkit (a student may have monkeypatched it), turns each
value into plain data (Python scalars and containers, CPU tensors, modules as builder + state
dict + structure) and writes it with `torch.save`.

Grader side: `load_exports(path)` reads the file with `torch.load(weights_only=True)` (no pickled
object is ever built), and `decode` turns the data back into values: a module exported with a
labkit builder is rebuilt with `labkit.models.get_model` and its weights loaded strictly, so an
export that is not what it claims (other keys, shapes or layer settings) is rejected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

MAX_EXPORT_BYTES = 512 * 2**20  # a larger export is refused, so no student can flood the grader

# Runs in the student's kernel: self-contained, no labkit import, every failure kept per name.
_KERNEL_SOURCE = r"""
def _labkit_export_(names, path):
    import sys
    import torch
    np, pd, nn = sys.modules.get("numpy"), sys.modules.get("pandas"), torch.nn
    budget = [1_000_000]

    def tname(x):
        return type(x).__module__ + "." + type(x).__qualname__

    def plain(v, depth=0):
        if v is None or type(v) in (bool, int, float, str):
            return True
        return type(v) in (tuple, list) and len(v) <= 16 and depth < 3 and all(
            plain(i, depth + 1) for i in v
        )

    def tensor(x):
        t = torch.Tensor.as_subclass(x, torch.Tensor).detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        return t.cpu().clone()

    def module(m):
        structure = []
        for name, sub in m.named_modules():
            found = {k: v for k, v in vars(sub).items()
                     if not k.startswith("_") and k != "training" and plain(v)}
            if "bias" in sub._parameters:
                found["bias"] = sub._parameters["bias"] is not None
            structure.append([name, tname(sub), enc(found, 1)])
        state = [[k, tensor(v)] for k, v in m.state_dict().items()]
        builder = getattr(m, "labkit_builder", None)
        return {"~": "module", "type": tname(m), "training": bool(m.training),
                "builder": None if builder is None else enc(builder, 1),
                "state_dict": state, "structure": structure}

    def enc(x, depth=0):
        budget[0] -= 1
        if budget[0] < 0 or depth > 24:
            raise ValueError("too large or too deeply nested to export")
        t = type(x)
        if x is None or t in (bool, int, float, str, bytes):
            return x
        if isinstance(x, int):
            return int.__int__(x)
        if isinstance(x, float):
            return float.__float__(x)
        if isinstance(x, str):
            return str.__str__(x)
        if t is complex:
            return {"~": "complex", "v": [x.real, x.imag]}
        if isinstance(x, torch.Tensor):
            return {"~": "tensor", "v": tensor(x), "parameter": isinstance(x, nn.Parameter)}
        if isinstance(x, nn.Module):
            return module(x)
        if isinstance(x, torch.Size):
            return {"~": "size", "v": [int(i) for i in x]}
        if isinstance(x, torch.dtype):
            return {"~": "dtype", "v": str(x)}
        if isinstance(x, torch.device):
            return {"~": "device", "v": str(x)}
        if np is not None and isinstance(x, np.ndarray):
            a = np.asarray(x)
            if a.dtype.kind in "biufc":
                return {"~": "ndarray", "v": torch.from_numpy(np.ascontiguousarray(a)).clone(),
                        "dtype": str(a.dtype)}
            return {"~": "ndarray", "v": enc(a.tolist(), depth + 1), "dtype": str(a.dtype),
                    "shape": list(a.shape)}
        if np is not None and isinstance(x, np.generic):
            return {"~": "npscalar", "v": enc(x.item(), depth + 1), "dtype": str(x.dtype)}
        if pd is not None and isinstance(x, pd.DataFrame):
            return {"~": "dataframe", "v": enc(x.to_dict(orient="split"), depth + 1)}
        if pd is not None and isinstance(x, pd.Series):
            split = {"index": list(x.index), "data": list(x), "name": x.name}
            return {"~": "series", "v": enc(split, depth + 1)}
        if isinstance(x, (list, tuple)):
            if len(x) > budget[0]:
                raise ValueError("too large to export")
            items = [enc(i, depth + 1) for i in x]
            return items if isinstance(x, list) else tuple(items)
        if isinstance(x, (set, frozenset)):
            return {"~": "set", "v": [enc(i, depth + 1) for i in x],
                    "frozen": isinstance(x, frozenset)}
        if isinstance(x, dict):
            if len(x) > budget[0]:
                raise ValueError("too large to export")
            return {"~": "dict", "v": [[enc(k, depth + 1), enc(v, depth + 1)]
                                       for k, v in x.items()]}
        if isinstance(x, range):
            return {"~": "range", "v": [x.start, x.stop, x.step]}
        return {"~": "unexportable", "type": tname(x)}

    space, out = globals(), {}
    for name in names:
        if name not in space:
            out[name] = {"~": "missing"}
            continue
        try:
            out[name] = enc(space[name])
        except BaseException as error:  # whatever goes wrong: say so, export the rest
            out[name] = {"~": "unexportable", "type": tname(space[name]),
                         "error": (type(error).__name__ + ": " + str(error))[:300]}
    torch.save({"labkit_export": 1, "names": out}, path)
"""


def export_code(names: tuple[str, ...] | list[str], path: str | os.PathLike) -> str:
    """The code that exports `names` from a kernel's namespace to `path` (then tidies up)."""
    call = f"_labkit_export_({list(names)!r}, {str(path)!r})"
    return f"{_KERNEL_SOURCE}\ntry:\n    {call}\nfinally:\n    del _labkit_export_\n"


class ExportError(Exception):
    """An exported value the grader cannot accept (the message is shown to the student)."""


@dataclass(frozen=True)
class Missing:
    """A name that was not defined in the student's kernel."""

    name: str


@dataclass(frozen=True)
class Unexportable:
    """A value of a type that does not cross as data; checks see this stand-in instead."""

    type: str
    error: str = ""

    def __repr__(self) -> str:
        return f"<unexportable {self.type}{': ' + self.error if self.error else ''}>"


@dataclass(frozen=True)
class ModuleEntry:
    """One submodule of an exported module: qualified name, class, simple settings."""

    name: str
    type: str
    attrs: Mapping[str, Any]


class ModuleRecord:
    """A module exported without a labkit builder: structure and weights, read-only; it cannot run.

    Checks may read `type`, `entries` (`ModuleEntry` per submodule, as in `named_modules()`),
    `state_dict` and `num_parameters()`, e.g.
    `sum(e.type.endswith(".Conv2d") for e in record.entries)` counts convolutions.
    """

    def __init__(self, type_name: str, entries: list[ModuleEntry], state: dict, training: bool):
        self.type = type_name
        self.entries = tuple(entries)
        self.state_dict = MappingProxyType(state)
        self.training = training

    def named_modules(self) -> Iterator[tuple[str, ModuleEntry]]:
        return ((e.name, e) for e in self.entries)

    def num_parameters(self) -> int:
        """Elements of every tensor in the state dict (parameters and buffers alike)."""
        return sum(int(t.numel()) for t in self.state_dict.values())

    def __repr__(self) -> str:
        return f"<ModuleRecord {self.type}: {len(self.entries)} modules>"


def load_exports(path: Path, max_bytes: int = MAX_EXPORT_BYTES) -> dict[str, Any]:
    """The raw exported data of one question (tags not yet decoded); ExportError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ExportError("the answer's values could not be exported from the notebook's kernel")
    size = path.stat().st_size
    if size > max_bytes:
        raise ExportError(
            f"the answer's values take {size / 2**20:.0f} MiB, above the grader's "
            f"limit of {max_bytes / 2**20:.0f} MiB"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or forged file: any reason means "not readable"
        raise ExportError(
            f"the exported values could not be read ({type(error).__name__})"
        ) from error
    if (
        not isinstance(data, dict)
        or data.get("labkit_export") != 1
        or not isinstance(data.get("names"), dict)
    ):
        raise ExportError("the exported values are not in the grader's format")
    return data["names"]


def _plain_args(value: Any, where: str) -> Any:
    """Builder arguments must be plain data: numbers, strings, None and tuples/lists of those."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return type(value)(_plain_args(v, where) for v in value)
    raise ExportError(f"{where}: builder argument of type {type(value).__name__} is not plain data")


def _module(tag: dict, where: str) -> torch.nn.Module | ModuleRecord:
    """A module rebuilt from its builder and weights, or a read-only record without a builder."""
    state = {str(k): v for k, v in tag["state_dict"]}
    if any(not isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{where}: the exported weights are not tensors")
    entries = [
        ModuleEntry(str(n), str(t), MappingProxyType(decode(a))) for n, t, a in tag["structure"]
    ]
    builder = decode(tag["builder"]) if tag.get("builder") is not None else None
    if builder is None:
        return ModuleRecord(str(tag["type"]), entries, state, bool(tag.get("training")))
    if not (
        isinstance(builder, tuple)
        and len(builder) == 2
        and isinstance(builder[0], str)
        and isinstance(builder[1], dict)
        and all(isinstance(k, str) for k in builder[1])
    ):
        raise ExportError(f"{where}: its labkit_builder is not (name, {{argument: value}})")
    name, args = builder[0], {k: _plain_args(v, where) for k, v in builder[1].items()}
    from labkit.models import get_model  # the grader's own, untouched registry

    call = f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
    try:
        model = get_model(name, **args)
    except (ValueError, TypeError, MemoryError, RuntimeError) as error:
        raise ExportError(f"{where}: could not rebuild {call}: {error}") from error
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().split("\n")[:3]
        raise ExportError(
            f"{where}: its weights do not fit {call}, so it is not the model it claims to be "
            f"({' '.join(s.strip() for s in first)[:300]})"
        ) from error
    rebuilt = [(n, _type_name(m), _settings(m)) for n, m in model.named_modules()]
    exported = [(e.name, e.type, dict(e.attrs)) for e in entries]
    same = len(rebuilt) == len(exported) and all(
        (a[0], a[1]) == (b[0], b[1]) and all(a[2][k] == b[2][k] for k in a[2].keys() & b[2].keys())
        for a, b in zip(rebuilt, exported, strict=True)
    )
    if not same:
        raise ExportError(
            f"{where}: its layers differ from those of {call} (changed after it was built?), "
            "so the grader cannot check it as that model"
        )
    model.train(bool(tag.get("training")))
    return model


def _type_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _plain(value: Any, depth: int = 0) -> bool:
    """The kernel side's rule for a simple setting (kept in step with `_KERNEL_SOURCE`)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    return (
        type(value) in (tuple, list)
        and len(value) <= 16
        and depth < 3
        and all(_plain(v, depth + 1) for v in value)
    )


def _settings(module: torch.nn.Module) -> dict[str, Any]:
    """The simple settings of one module (in_channels, stride, groups, ...), as exported."""
    out = {
        k: v
        for k, v in vars(module).items()
        if not k.startswith("_") and k != "training" and _plain(v)
    }
    if "bias" in module._parameters:
        out["bias"] = module._parameters["bias"] is not None
    return out


def decode(value: Any, where: str = "value") -> Any:
    """Exported data back into values (tensors, numpy arrays, rebuilt modules, ...)."""
    if value is None or type(value) in (bool, int, float, str, bytes, complex):
        return value
    if type(value) is list:
        return [decode(v, where) for v in value]
    if type(value) is tuple:
        return tuple(decode(v, where) for v in value)
    if isinstance(value, torch.Tensor):
        return value
    if type(value) is not dict or "~" not in value:
        raise ExportError(f"{where}: unexpected data of type {type(value).__name__}")
    tag, v = value["~"], value.get("v")
    if tag == "tensor":
        return (
            torch.nn.Parameter(v, requires_grad=v.is_floating_point())
            if value.get("parameter")
            else v
        )
    if tag == "ndarray":
        if isinstance(v, torch.Tensor):
            return v.numpy().astype(value["dtype"], copy=False)
        return np.array(decode(v, where), dtype=value["dtype"]).reshape(value["shape"])
    if tag == "npscalar":
        return np.dtype(value["dtype"]).type(decode(v, where))
    if tag == "complex":
        return complex(*v)
    if tag == "size":
        return torch.Size(v)
    if tag == "dtype":
        dtype = getattr(torch, str(v).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise ExportError(f"{where}: unknown dtype {v!r}")
        return dtype
    if tag == "device":
        return torch.device(v)
    if tag == "set":
        items = [decode(i, where) for i in v]
        return frozenset(items) if value.get("frozen") else set(items)
    if tag == "dict":
        return {decode(k, where): decode(i, where) for k, i in v}
    if tag == "range":
        return range(*v)
    if tag in ("dataframe", "series"):
        import pandas as pd

        split = decode(v, where)
        if tag == "series":
            return pd.Series(split["data"], index=split["index"], name=split["name"])
        return pd.DataFrame(split["data"], index=split["index"], columns=split["columns"])
    if tag == "module":
        return _module(value, where)
    if tag == "unexportable":
        return Unexportable(str(value.get("type")), str(value.get("error", "")))
    if tag == "missing":
        return Missing(where)
    raise ExportError(f"{where}: unknown exported kind {tag!r}")
