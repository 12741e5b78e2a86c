"""Values crossing from a student's kernel to the grader as data, never as objects: the
worker's side of the export (the kernel's side is `labkit.grading.kernel.encoder`).

In the kernel: `export_code(names, path)` is source text run in the student's kernel right after
an answer cell. It runs the source of `labkit.grading.kernel.encoder` (which imports nothing from
labkit: a student may have monkeypatched it) in a namespace of its own, so the kernel's globals
stay as they were, and that module turns each value into plain data (Python scalars and
containers, CPU tensors, modules as builder + state dict + structure) and writes it with
`torch.save`.

Here, in the worker: `load_exports(path)` reads the file with `torch.load(weights_only=True)` (no
pickled object is ever built), and `decode` turns the data back into values, one decoder per tag:
a module exported with a labkit builder is rebuilt with `labkit.models.get_model` and its weights
loaded strictly, so an export that is not what it claims (other keys, shapes or layer settings)
is rejected; the layer settings are compared by `encoder.settings`, the rule the kernel side used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from labkit.grading.kernel import encoder
from labkit.grading.kernel.encoder import TAG

MAX_EXPORT_BYTES = 512 * 2**20  # a larger export is refused, so no student can flood the grader

# The kernel side, run as it is in the student's kernel.
_SOURCE = Path(encoder.__file__).read_text(encoding="utf-8")


def export_code(names: tuple[str, ...] | list[str], path: str | os.PathLike) -> str:
    """Code that exports `names` from a kernel's namespace to `path`, leaving that namespace as is.

    One expression: it runs the source of `encoder` in a fresh namespace (builtins taken from
    the `builtins` module, so a student's variable named `exec` or `compile` changes nothing) and
    calls its `export` on the kernel's globals. It evaluates to None, so nothing is displayed.
    """
    run = 'b.exec(b.compile(source, "labkit/grading/kernel/encoder.py", "exec"), ns)'
    call = f'ns["export"]({list(names)!r}, {str(path)!r}, b.globals())'
    args = f'__import__("builtins"), {_SOURCE!r}, {{"__name__": "labkit_encoder"}}'
    return f"(lambda b, source, ns: ({run}, {call})[1])({args})\n"


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
    rebuilt = [(n, encoder.type_name(m), encoder.settings(m)) for n, m in model.named_modules()]
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


def _tensor(value: dict, where: str) -> torch.Tensor:
    v = value["v"]
    if value.get("parameter"):
        return torch.nn.Parameter(v, requires_grad=v.is_floating_point())
    return v


def _ndarray(value: dict, where: str) -> np.ndarray:
    v = value["v"]
    if isinstance(v, torch.Tensor):
        return v.numpy().astype(value["dtype"], copy=False)
    return np.array(decode(v, where), dtype=value["dtype"]).reshape(value["shape"])


def _dtype(value: dict, where: str) -> torch.dtype:
    dtype = getattr(torch, str(value["v"]).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ExportError(f"{where}: unknown dtype {value['v']!r}")
    return dtype


def _set(value: dict, where: str) -> set | frozenset:
    items = [decode(i, where) for i in value["v"]]
    return frozenset(items) if value.get("frozen") else set(items)


def _frame(value: dict, where: str) -> Any:
    import pandas as pd  # only when an answer holds one

    split = decode(value["v"], where)
    return pd.DataFrame(split["data"], index=split["index"], columns=split["columns"])


def _series(value: dict, where: str) -> Any:
    import pandas as pd

    split = decode(value["v"], where)
    return pd.Series(split["data"], index=split["index"], name=split["name"])


# One decoder per tag that `encoder` writes: (tagged dict, where) -> value.
_DECODERS: dict[str, Callable[[dict, str], Any]] = {
    encoder.TENSOR: _tensor,
    encoder.NDARRAY: _ndarray,
    encoder.NPSCALAR: lambda d, w: np.dtype(d["dtype"]).type(decode(d["v"], w)),
    encoder.COMPLEX: lambda d, w: complex(*d["v"]),
    encoder.SIZE: lambda d, w: torch.Size(d["v"]),
    encoder.DTYPE: _dtype,
    encoder.DEVICE: lambda d, w: torch.device(d["v"]),
    encoder.SET: _set,
    encoder.DICT: lambda d, w: {decode(k, w): decode(i, w) for k, i in d["v"]},
    encoder.RANGE: lambda d, w: range(*d["v"]),
    encoder.DATAFRAME: _frame,
    encoder.SERIES: _series,
    encoder.MODULE: _module,
    encoder.UNEXPORTABLE: lambda d, w: Unexportable(str(d.get("type")), str(d.get("error", ""))),
    encoder.MISSING: lambda d, w: Missing(w),
}


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
    if type(value) is not dict or TAG not in value:
        raise ExportError(f"{where}: unexpected data of type {type(value).__name__}")
    decoder = _DECODERS.get(value[TAG]) if isinstance(value[TAG], str) else None
    if decoder is None:
        raise ExportError(f"{where}: unknown exported kind {value[TAG]!r}")
    return decoder(value, where)
