"""`make gpu-check`: the GPU path checked in one prepared run (issue 26).

On one CUDA GPU it runs, each as a child process with its own time limit:
1. the rehearsal of every lab (`labkit run --profile full --rehearse`) under bfloat16 and
   under float16 mixed precision (`$LABKIT_AMP`, see `labkit.training.steps.amp_settings`);
2. the HBP 448 benchmark (`benchmarks/gpu_hbp_448.py`: images per second and peak memory of
   both stages, fp32 against bf16), its table in `results/gpu_hbp_448.json`;
and writes what each step did (status, seconds, the end of its output) to
`results/gpu_check.json`. Without CUDA it says so and exits with status 2.

Usage: `python benchmarks/gpu_check.py [--json PATH] [--labs 02 04]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = (
    "gpu-check needs a CUDA GPU and finds none here (torch.cuda.is_available() is False): "
    "run `make gpu-check` on the GPU machine; on this one `make rehearse` checks the same cells"
)
TAIL = 2000  # characters of a step's output kept in the JSON


def plan(labs: Sequence[str] = ()) -> list[dict]:
    """The steps, in order: name, command (run from the checkout), extra environment, limit."""
    labkit = [sys.executable, "-m", "labkit.cli"]
    steps = [
        {
            "name": f"rehearsal {dtype}",
            "command": [
                *labkit,
                "run",
                *labs,
                "--profile",
                "full",
                "--rehearse",
                "--out",
                f"build/gpu-check/rehearsal-{dtype}",
            ],
            "env": {"LABKIT_AMP": dtype},
            "timeout": 150,
        }  # fmt: skip
        for dtype in ("bfloat16", "float16")
    ]
    steps.append({
        "name": "HBP 448 benchmark",
        "command": [sys.executable, "benchmarks/gpu_hbp_448.py", "--max-batch", "64",
                    "--json", "results/gpu_hbp_448.json"],
        "env": {},
        "timeout": 150,
    })  # fmt: skip
    return steps


def run_step(step: dict) -> dict:
    """Run one step of `plan`; its name, status ("ok", "exit N" or "time-out"), seconds and
    the end of its output."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            step["command"], cwd=ROOT, env={**os.environ, **step["env"]}, timeout=step["timeout"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        status = "time-out"
        output = f"{expired.stdout or ''}{expired.stderr or ''}"
        output = output if isinstance(output, str) else output.decode(errors="replace")
    seconds = round(time.perf_counter() - start, 1)
    return {"name": step["name"], "status": status, "seconds": seconds, "output": output[-TAIL:]}


def report(device: str, results: list[dict]) -> dict:
    """The JSON written: the device, torch's version, every step's result, whether all passed."""
    return {
        "device": device,
        "torch": torch.__version__,
        "steps": results,
        "ok": all(r["status"] == "ok" for r in results),
    }


def main(
    argv: list[str] | None = None,
    *,
    cuda: bool | None = None,
    runner: Callable[[dict], dict] = run_step,
) -> int:
    """Run the check; 0 when every step passed, 1 when one failed, 2 without CUDA."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "gpu_check.json")
    parser.add_argument("--labs", nargs="*", default=[], help="two-digit lab numbers (all)")
    args = parser.parse_args(argv)
    if not (torch.cuda.is_available() if cuda is None else cuda):
        print(NO_CUDA, file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda"
    results = []
    for step in plan(args.labs):
        print(f"gpu-check: {step['name']} ...", flush=True)
        results.append(runner(step))
        print(f"  {results[-1]['status']} in {results[-1]['seconds']:.0f} s", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report(device, results), indent=2) + "\n")
    print(f"gpu-check: {args.json}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
