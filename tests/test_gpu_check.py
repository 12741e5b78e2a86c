"""benchmarks/gpu_check.py (`make gpu-check`): its CPU-side parts."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("gpu_check", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_exits_non_zero(check, tmp_path, capsys) -> None:
    out = tmp_path / "gpu_check.json"
    assert check.main(["--json", str(out)], cuda=False) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_the_plan_rehearses_both_precisions_and_benchmarks_hbp(check) -> None:
    steps = check.plan(["04"])
    assert [s["name"] for s in steps] == [
        "rehearsal bfloat16", "rehearsal float16", "HBP 448 benchmark"
    ]  # fmt: skip
    assert [s["env"].get("LABKIT_AMP") for s in steps] == ["bfloat16", "float16", None]
    assert steps[0]["command"][-6:-2] == ["04", "--profile", "full", "--rehearse"]
    assert sum(s["timeout"] for s in steps) <= 8 * 60  # the 8 minutes


def test_json_names_every_step_and_whether_all_passed(check, tmp_path) -> None:
    out = tmp_path / "gpu_check.json"
    statuses = iter(["ok", "exit 1", "ok"])

    def fake(step: dict) -> dict:
        return {"name": step["name"], "status": next(statuses), "seconds": 1.5, "output": "x"}

    assert check.main(["--json", str(out)], cuda=True, runner=fake) == 1
    written = json.loads(out.read_text())
    assert set(written) == {"device", "torch", "steps", "ok"} and written["ok"] is False
    assert [s["status"] for s in written["steps"]] == ["ok", "exit 1", "ok"]
    assert set(written["steps"][0]) == {"name", "status", "seconds", "output"}


def test_a_step_reports_its_status_time_out_and_output(check) -> None:
    step = {"name": "x", "command": [sys.executable, "-c", "print('hi'); raise SystemExit(3)"],
            "env": {}, "timeout": 60}  # fmt: skip
    assert check.run_step(step)["status"] == "exit 3" and "hi" in check.run_step(step)["output"]
    slow = {**step, "command": [sys.executable, "-c", "import time; time.sleep(30)"], "timeout": 1}
    assert check.run_step(slow)["status"] == "time-out"
