"""The GPU benchmark of lab 04 (`benchmarks/gpu_hbp_448.py`), tried on the CPU at a tiny size:
its batch search and its table, so that a session lent a GPU runs it without surprises."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_hbp_448.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_hbp_448", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LIMITS = [(37, 256, 37), (1, 256, 1), (0, 8, 0), (300, 256, 256), (64, 64, 64)]


@pytest.mark.parametrize(("limit", "cap", "expected"), LIMITS)
def test_largest_batch_finds_the_limit(bench, monkeypatch, limit: int, cap: int, expected: int):
    tried = []

    def fits(model, optimizer, batch, crop, amp_dtype) -> bool:
        tried.append(batch)
        return batch <= limit

    monkeypatch.setattr(bench, "fits", fits)
    assert bench.largest_batch(None, None, 448, None, cap) == expected
    assert len(tried) <= 2 * math.log2(cap) + 2  # doubling then bisecting, never a scan
    assert max(tried) <= cap


def test_a_tiny_cpu_run_gives_both_stages_and_precisions(bench) -> None:
    args = bench.argparse.Namespace(device="cpu", crop=32, d=16, backbone="small_vgg", width=4,
                                    batch=2, max_batch=3, steps=1, warmup=0, json=None)  # fmt: skip
    table = bench.run(args)
    assert list(table.index) == [(s, p) for s in ("stage 1", "stage 2")
                                 for p in ("float32", "bfloat16")]  # fmt: skip
    assert (table["largest batch"] == 3).all()  # nothing runs out of memory on the CPU: the cap
    assert (table["images per second, largest"] > 0).all()
    assert (table["images per second, batch 2"] > 0).all()
    assert table["peak memory (MiB), largest"].isna().all()  # no CUDA allocator to ask
