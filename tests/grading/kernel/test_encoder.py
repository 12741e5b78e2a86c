"""The kernel side of the export: the raw data `encoder.export` writes, tag by tag."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from labkit.grading.kernel import encoder
from labkit.grading.kernel.encoder import TAG
from labkit.grading.worker import decoder


def _raw(tmp_path: Path, names: list[str] | None = None, **values) -> dict:
    """What `export` writes for `values`, read back as the grader does (weights_only)."""
    path = tmp_path / "raw.pt"
    encoder.export(sorted(values) if names is None else names, str(path), values)
    data = torch.load(path, weights_only=True)
    assert set(data) == {"labkit_export", "names"} and data["labkit_export"] == 1
    return data["names"]


def _nested(depth: int) -> list:
    """`depth` lists, one inside the other, around a 1."""
    value: list | int = 1
    for _ in range(depth):
        value = [value]
    return value


class Shy(int):
    """An int subclass: crosses as the plain int it holds."""


class Broken(list):
    """A list that cannot be read."""

    def __iter__(self):
        raise RuntimeError("boom " + "x" * 400)


def test_scalars_and_containers(tmp_path: Path) -> None:
    raw = _raw(
        tmp_path,
        n=3,
        shy=Shy(4),
        x=0.5,
        s="t",
        b=b"\x00",
        none=None,
        c=1 + 2j,
        seq=[1, (2, "a")],
        d={"k": [1], 2: None},
        items={5},
        frozen=frozenset({6}),
        r=range(1, 9, 2),
    )
    assert raw["n"] == 3 and type(raw["shy"]) is int and raw["shy"] == 4
    assert (raw["x"], raw["s"], raw["b"], raw["none"]) == (0.5, "t", b"\x00", None)
    assert raw["c"] == {TAG: "complex", "v": [1.0, 2.0]}
    assert raw["seq"] == [1, (2, "a")] and type(raw["seq"][1]) is tuple
    assert raw["d"] == {TAG: "dict", "v": [["k", [1]], [2, None]]}
    assert raw["items"] == {TAG: "set", "v": [5], "frozen": False}
    assert raw["frozen"] == {TAG: "set", "v": [6], "frozen": True}
    assert raw["r"] == {TAG: "range", "v": [1, 9, 2]}


def test_tensors_cross_as_detached_copies(tmp_path: Path) -> None:
    base = torch.arange(10.0)
    graph = torch.ones(2, requires_grad=True) * 2
    raw = _raw(tmp_path, view=base[2:4], p=torch.nn.Parameter(torch.ones(2)), graph=graph)
    view = raw["view"]
    assert set(view) == {TAG, "v", "parameter"} and view[TAG] == "tensor"
    assert not view["parameter"] and torch.equal(view["v"], torch.tensor([2.0, 3.0]))
    assert view["v"].untyped_storage().nbytes() == 8  # not the whole base
    assert raw["p"]["parameter"] and type(raw["p"]["v"]) is torch.Tensor
    assert raw["graph"] == {TAG: "tensor", "v": raw["graph"]["v"], "parameter": False}
    assert not raw["graph"]["v"].requires_grad and torch.equal(raw["graph"]["v"], graph.detach())


def test_torch_descriptions(tmp_path: Path) -> None:
    raw = _raw(tmp_path, size=torch.Size([2, 3]), dtype=torch.bfloat16, dev=torch.device("cpu"))
    assert raw["size"] == {TAG: "size", "v": [2, 3]}
    assert raw["dtype"] == {TAG: "dtype", "v": "torch.bfloat16"}
    assert raw["dev"] == {TAG: "device", "v": "cpu"}


def test_numpy_values(tmp_path: Path) -> None:
    numbers = np.arange(6, dtype=np.int16).reshape(2, 3)[:, ::2]  # not contiguous
    raw = _raw(
        tmp_path,
        numbers=numbers,
        objects=np.array([["a", None]], dtype=object),
        strings=np.array(["ab", "c"]),
        scalar=np.float32(0.25),
    )
    assert set(raw["numbers"]) == {TAG, "v", "dtype"} and raw["numbers"]["dtype"] == "int16"
    assert raw["numbers"][TAG] == "ndarray"
    assert torch.equal(raw["numbers"]["v"], torch.tensor([[0, 2], [3, 5]], dtype=torch.int16))
    assert raw["objects"] == {
        TAG: "ndarray",
        "v": [["a", None]],
        "dtype": "object",
        "shape": [1, 2],
    }
    assert raw["strings"] == {TAG: "ndarray", "v": ["ab", "c"], "dtype": "<U2", "shape": [2]}
    assert raw["scalar"] == {TAG: "npscalar", "v": 0.25, "dtype": "float32"}
    assert type(raw["scalar"]["v"]) is float


def test_pandas_values(tmp_path: Path) -> None:
    frame = pd.DataFrame({"acc": [0.5, 0.75]}, index=["a", "b"])
    series = pd.Series([1, 2], index=["x", "y"], name="n")
    raw = _raw(tmp_path, frame=frame, series=series)
    assert raw["frame"][TAG] == "dataframe"
    split = dict(raw["frame"]["v"]["v"])  # the dict tag's [key, value] pairs
    assert split["index"] == ["a", "b"] and split["columns"] == ["acc"]
    assert split["data"] == [[0.5], [0.75]]
    assert raw["series"][TAG] == "series"
    split = dict(raw["series"]["v"]["v"])
    assert split["index"] == ["x", "y"] and split["name"] == "n"
    assert [decoder.decode(v) for v in split["data"]] == [1, 2]  # ints or numpy ints


def test_module_without_builder(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, bias=False), torch.nn.ReLU())
    raw = _raw(tmp_path, model=model.eval())["model"]
    assert set(raw) == {TAG, "type", "training", "builder", "state_dict", "structure"}
    assert raw[TAG] == "module" and raw["type"] == "torch.nn.modules.container.Sequential"
    assert raw["builder"] is None and raw["training"] is False
    assert [k for k, _ in raw["state_dict"]] == ["0.weight"]
    assert torch.equal(raw["state_dict"][0][1], model[0].weight.detach())
    names = [(name, kind.rsplit(".", 1)[1]) for name, kind, _ in raw["structure"]]
    assert names == [("", "Sequential"), ("0", "Conv2d"), ("1", "ReLU")]
    conv = dict(raw["structure"][1][2]["v"])
    assert conv["stride"] == (2, 2) and conv["bias"] is False and conv["in_channels"] == 3
    assert "training" not in conv and not any(k.startswith("_") for k in conv)


def test_module_with_builder(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    model.labkit_builder = ("linear", {"sizes": (2, 1)})
    raw = _raw(tmp_path, model=model)["model"]
    assert raw["builder"] == ("linear", {TAG: "dict", "v": [["sizes", (2, 1)]]})
    assert raw["training"] is True and [k for k, _ in raw["state_dict"]] == ["weight", "bias"]


def test_failures_are_kept_per_name(tmp_path: Path) -> None:
    values = {"broken": Broken(), "fn": len, "deep": _nested(25), "ok": _nested(24)}
    raw = _raw(tmp_path, names=["absent", *values], **values)
    assert raw["absent"] == {TAG: "missing"}
    broken = raw["broken"]
    assert broken[TAG] == "unexportable" and broken["type"].endswith(".Broken")
    assert broken["error"].startswith("RuntimeError: boom xx") and len(broken["error"]) == 300
    assert raw["fn"] == {TAG: "unexportable", "type": "builtins.builtin_function_or_method"}
    assert raw["deep"][TAG] == "unexportable" and "too deeply nested" in raw["deep"]["error"]
    assert raw["ok"] == _nested(24)


def test_one_budget_for_all_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "MAX_ITEMS", 6)
    raw = _raw(tmp_path, names=["a", "b"], a=[1, 2, 3], b=[1, 2, 3])
    assert raw["a"] == [1, 2, 3] and "too large" in raw["b"]["error"]
    monkeypatch.undo()
    assert "too large" in _raw(tmp_path, big=[0] * 1_000_001)["big"]["error"]


def test_plain_settings() -> None:
    assert encoder.plain((1, 2.0, "a", None, True)) and encoder.plain([[[1]]])
    assert not encoder.plain([[[[1]]]]) and not encoder.plain((0,) * 17)
    assert not encoder.plain(Shy(1)) and not encoder.plain({"a": 1})
    assert encoder.settings(torch.nn.Linear(2, 3, bias=False)) == {
        "in_features": 2,
        "out_features": 3,
        "bias": False,
    }


def test_every_tag_has_a_decoder() -> None:
    kinds = {v for k, v in vars(encoder).items() if k.isupper() and isinstance(v, str)}
    assert set(decoder._DECODERS) == kinds - {TAG}


def test_the_encoder_imports_nothing_from_labkit() -> None:
    tree = ast.parse(inspect.getsource(encoder))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add(node.module)
    assert imported, "the walk found the imports"
    for name in imported:
        top = name.split(".")[0]
        assert top == "torch" or top in sys.stdlib_module_names, name


def test_export_code_leaves_the_namespace_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "export.pt"
    weights = torch.ones(2)
    # a student's own names that shadow builtins do not break the export
    namespace = {"w": weights, "exec": 1, "compile": False, "globals": None, "export": "mine"}
    before = dict(namespace)
    assert eval(decoder.export_code(["w", "export"], path), namespace) is None
    namespace.pop("__builtins__")  # added by eval itself
    assert namespace.keys() == before.keys()
    assert all(namespace[k] is before[k] for k in before)
    raw = torch.load(path, weights_only=True)["names"]
    assert torch.equal(raw["w"]["v"], weights) and raw["export"] == "mine"


@pytest.mark.kernel
def test_export_code_loads_nothing_new_in_a_kernel(tmp_path: Path) -> None:
    """In a fresh interpreter with torch only, the export imports neither labkit nor pandas."""
    path = tmp_path / "export.pt"
    script = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "x = [1, (2,)]\n"
        f"{decoder.export_code(['x'], path)}"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.startswith(('labkit', 'pandas'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert torch.load(path, weights_only=True)["names"] == {"x": [1, (2,)]}
