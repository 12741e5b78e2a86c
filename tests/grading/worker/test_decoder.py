"""Values cross from a kernel to the grader as data: round trips, rebuilt modules, forgeries."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from labkit.grading.worker.decoder import (
    ExportError,
    Missing,
    ModuleRecord,
    Unexportable,
    decode,
    export_code,
    load_exports,
)
from labkit.models import DenseNet, densenet_bc


def _round_trip(tmp_path: Path, **values) -> dict:
    """Export `values` the way a kernel does (the same source text), then load and decode."""
    path = tmp_path / "export.pt"
    namespace = dict(values)
    exec(export_code(sorted(values) + ["not_defined"], path), namespace)
    namespace.pop("__builtins__")  # added by exec itself
    assert namespace.keys() == values.keys()  # the kernel's namespace is left as it was
    raw = load_exports(path)
    return {name: decode(raw[name], name) for name in raw}


class Liar(int):
    """An int that claims to equal anything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def test_plain_values_round_trip(tmp_path: Path) -> None:
    big = torch.arange(100.0)
    values = {
        "n": 39,
        "x": 0.5,
        "s": "text",
        "none": None,
        "flag": True,
        "c": 1 + 2j,
        "seq": [1, (2, 3), {"a": [4]}],
        "items": {1, 2},
        "r": range(3),
        "t": big[:3],  # a view: only its own elements cross
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_int": np.int64(7),
        "strings": np.array(["a", "b"]),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "frame": pd.DataFrame({"acc": [0.5, 0.75]}, index=["a", "b"]),
        "liar": Liar(3),
    }
    got = _round_trip(tmp_path, **values)
    for name in ("n", "x", "s", "none", "flag", "c", "seq", "items", "r", "size", "dtype"):
        assert got[name] == values[name] and type(got[name]) is type(values[name]), name
    assert torch.equal(got["t"], big[:3]) and got["t"].untyped_storage().nbytes() == 12
    assert got["arr"].dtype == np.int16 and (got["arr"] == values["arr"]).all()
    assert type(got["np_int"]) is np.int64 and got["np_int"] == 7
    assert list(got["strings"]) == ["a", "b"]
    pd.testing.assert_frame_equal(got["frame"], values["frame"])
    assert type(got["liar"]) is int and got["liar"] == 3 and got["liar"] != 4
    assert got["not_defined"] == Missing("not_defined")


def test_objects_do_not_cross(tmp_path: Path) -> None:
    got = _round_trip(tmp_path, fn=lambda: 1, gen=(i for i in range(3)))
    assert isinstance(got["fn"], Unexportable) and got["fn"].type == "builtins.function"
    assert isinstance(got["gen"], Unexportable)


def test_module_with_builder_is_rebuilt_with_its_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = densenet_bc(block_config=(1, 1), growth_rate=4).eval()
    got = _round_trip(tmp_path, model=model)["model"]
    assert isinstance(got, DenseNet) and not got.training
    assert got.labkit_builder == ("densenet_bc", {"block_config": (1, 1), "growth_rate": 4})
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(got(x), model(x))


def test_module_without_builder_is_a_read_only_record(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU())
    record = _round_trip(tmp_path, model=model)["model"]
    assert (
        isinstance(record, ModuleRecord) and record.type == "torch.nn.modules.container.Sequential"
    )
    conv = record.entries[1]
    assert conv.type.endswith(".Conv2d") and conv.attrs["stride"] == (2, 2)
    assert conv.attrs["bias"] is True and record.num_parameters() == 3 * 8 * 9 + 8
    with pytest.raises(TypeError):
        record.state_dict["0.weight"] = torch.zeros(1)


def test_forged_builder_is_rejected(tmp_path: Path) -> None:
    small = densenet_bc(block_config=(1, 1), growth_rate=4)
    small.labkit_builder = ("densenet_bc", {"block_config": (2, 2, 4, 16)})  # claims the answer
    with pytest.raises(ExportError, match="do not fit densenet_bc"):
        _round_trip(tmp_path, model=small)


def test_model_changed_after_it_was_built_is_rejected(tmp_path: Path) -> None:
    model = densenet_bc(block_config=(1, 1), growth_rate=4)
    model.features.stem.stride = (2, 2)  # same weights, another network
    with pytest.raises(ExportError, match="layers differ"):
        _round_trip(tmp_path, model=model)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_unreadable_exports_are_refused(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (print, ("pickle code ran",))

    forged = tmp_path / "forged.pt"
    forged.write_bytes(pickle.dumps({"labkit_export": 1, "names": {"x": Boom()}}))
    with pytest.raises(ExportError, match="could not be read"):
        load_exports(forged)
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(ExportError, match="format"):
        load_exports(tmp_path / "other.pt")
    torch.save({"labkit_export": 1, "names": {}}, tmp_path / "big.pt")
    with pytest.raises(ExportError, match="limit"):
        load_exports(tmp_path / "big.pt", max_bytes=10)
    with pytest.raises(ExportError, match="could not be exported"):
        load_exports(tmp_path / "absent.pt")


def test_forged_tags_are_refused() -> None:
    with pytest.raises(ExportError, match="unknown dtype"):
        decode({"~": "dtype", "v": "load"}, "x")
    with pytest.raises(ExportError, match="unknown exported kind"):
        decode({"~": "object", "v": 1}, "x")

    def module(builder) -> dict:
        return {"~": "module", "type": "m", "builder": builder, "state_dict": [], "structure": []}

    tensor_arg = {"~": "dict", "v": [["block_config", {"~": "tensor", "v": torch.ones(2)}]]}
    with pytest.raises(ExportError, match="not plain data"):
        decode(module(("densenet_bc", tensor_arg)), "x")
    with pytest.raises(ExportError, match="could not rebuild"):
        decode(module(("os_system", {"~": "dict", "v": []})), "x")
    with pytest.raises(ExportError, match="labkit_builder is not"):
        decode(module("densenet_bc"), "x")
