"""Grading throughput: N copies of lab 02's all-right submission, smoke profile, W workers.

(a) labkit's grader (`grade_folder`): a kernel per submission, cells after the last answer cell
    skipped, values exported and checked in a worker process. (b) optional, `--baseline K`: the
    naive way on K copies, one after the other: nbclient executes the whole notebook with its
    checks in the student's kernel (what nbgrader and otter do), no exports, no isolation.

The same copies are graded once per sandbox mode (`--sandboxes bwrap,none`: student kernels in
bubblewrap, then unsandboxed), so one run reports what the sandbox costs.

Usage: python benchmarks/bench_grading.py [--copies 100] [--workers 2] [--baseline 0]
       [--cell-timeout 600] [--sandboxes bwrap,none]
       [--solutions solutions/02_densenet_resnext.ipynb] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# `answered_notebook` is a test helper (tests/grading/answered.py), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "grading"))

import nbformat
from answered import answered_notebook
from nbclient import NotebookClient

from labkit.grading.authoring.protocol import marker
from labkit.grading.scheduler.run import grade_folder

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions" / "02_densenet_resnext.ipynb"


def write_copies(solutions: Path, folder: Path, copies: int) -> None:
    """`copies` identical all-right submissions (the solutions' answers, a free-text answer)."""
    nb = answered_notebook(solutions)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and marker(cell):
            cell.source = f"<!-- Answer {marker(cell)[1]} -->\nA short answer."
    text = nbformat.writes(nb)
    for n in range(copies):
        (folder / f"student{n:03d}.ipynb").write_text(text, encoding="utf-8")


def naive_seconds(solutions: Path, folder: Path, copies: int) -> float:
    """Mean seconds to execute the solutions notebook (checks in its own kernel) `copies` times."""
    env = {**os.environ, "LABKIT_PROFILE": "smoke", "LABKIT_RUNS": str(folder / "naive-runs")}
    start = time.perf_counter()
    for _ in range(copies):
        nb = nbformat.read(solutions, as_version=4)
        client = NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        )
        client.execute(env=env)
    return (time.perf_counter() - start) / copies


def grade_copies(args: argparse.Namespace, folder: Path, out: Path, sandbox: str) -> dict:
    """Grade the copies in one sandbox mode; its numbers."""
    start = time.perf_counter()
    run = grade_folder(
        args.solutions,
        folder,
        out,
        workers=args.workers,
        cell_timeout=args.cell_timeout,
        profile="smoke",
        sandbox=sandbox,
    )
    seconds = time.perf_counter() - start
    book = run.gradebook
    auto = [q.grade_id for q in run.spec.auto]
    full = bool((book[auto].sum(axis=1) == sum(run.spec.max_points[q] for q in auto)).all())
    return {
        "sandbox": run.results[0].sandbox,
        "total_s": round(seconds, 1),
        "submissions_per_minute": round(60 * args.copies / seconds, 2),
        "wall_s_per_submission": round(seconds / args.copies, 2),
        "mean_s_in_its_worker": round(float(book["seconds"].mean()), 2),
        "max_s_in_its_worker": round(float(book["seconds"].max()), 2),
        "all_full_marks": full,
        "statuses": book["status"].value_counts().to_dict(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=int, default=0, help="naive runs to time (0: none)")
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=600.0,
        help="fixed seconds per cell (0: budgets from a timed run of the solutions)",
    )
    parser.add_argument(
        "--sandboxes",
        default="bwrap,none",
        help="sandbox modes to grade the same copies in, one after the other",
    )
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    args.cell_timeout = args.cell_timeout or None
    numbers: dict = {"copies": args.copies, "workers": args.workers, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        write_copies(args.solutions, folder, args.copies)
        modes = [m.strip() for m in args.sandboxes.split(",") if m.strip()]
        for mode in modes:
            numbers[mode] = grade_copies(args, folder, Path(tmp) / f"out-{mode}", mode)
            print(f"{mode}: {numbers[mode]}", flush=True)
        if len(modes) == 2:
            a, b = (numbers[m]["total_s"] for m in modes)
            numbers[f"time_{modes[0]}_over_{modes[1]}"] = round(a / b, 3)
        if args.baseline:
            naive = naive_seconds(args.solutions, Path(tmp), args.baseline)
            numbers["naive_s_per_submission_1_worker"] = round(naive, 2)
            graded = numbers[modes[0]]["wall_s_per_submission"]
            numbers["speedup_vs_naive_sequential"] = round(naive / graded, 2)
    for key, value in numbers.items():
        print(f"{key:>36}: {value}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return 0 if all(numbers[m]["all_full_marks"] for m in modes) else 1


if __name__ == "__main__":
    sys.exit(main())
