"""Grade a folder of submissions: the run that ties submissions, workers and results together.

`grade_folder` is the API (it returns a `GradingRun` and prints nothing; `labkit grade` prints).
Each submission runs in a kernel of its own, in a scratch copy of its working folder, in a
sandbox where the machine has one (`sandbox`), under time budgets, a total time-out and a memory
limit, driven by a worker process (`labkit.grading.worker`). The answers' values are exported
from the kernel as data and the solutions' checks run on them in the worker, which the
student's code never ran in. Every file of the submissions folder is read into memory first
and verified afterwards: a file that a student's code changed or deleted is restored byte for
byte, and the status says so.

Time budgets: unless a fixed per-cell time-out is given, the solutions notebook runs first, like
a submission, and each question's cells may take `budget_factor` times as long as the solutions'
cells of that question took, plus `budget_extra_s`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from labkit.config import data_root
from labkit.grading.authoring.protocol import BEGIN_SOLUTION, LabSpec, parse_solutions
from labkit.grading.reports.gradebook import GradingRun
from labkit.grading.reports.results import QuestionResult, Status, SubmissionResult
from labkit.grading.scheduler.intake import read_entries, verify
from labkit.grading.scheduler.lab_data import write_lab_data
from labkit.grading.scheduler.sandbox import find_sandbox
from labkit.grading.scheduler.submission import Context, GradeSettings, grade_entry
from labkit.grading.scheduler.worker_handle import WorkerProcess

__all__ = ["GradeSettings", "grade_folder", "grade_submission"]


def _budgets(ctx: Context) -> tuple[dict[str, float], list[str]]:
    """Each question's time budget from a run of the solutions notebook, and warnings."""
    entries, _ = read_entries([ctx.solutions])
    uncapped = replace(ctx, settings=replace(ctx.settings, cell_timeout=None), budgets=None)
    result, timings = grade_entry(uncapped, entries[0])
    if result.outcomes:
        raise ValueError(
            f"{ctx.solutions} did not run cleanly to time its questions ({result.status}); "
            "fix it, or pass a fixed per-cell time-out (--cell-timeout)"
        )
    s = ctx.settings
    budgets = {key: s.budget_factor * t + s.budget_extra_s for key, t in timings.items()}
    for question in ctx.spec.auto:
        budgets.setdefault(question.grade_id, s.budget_extra_s)
    if all(q.points == q.max_points for q in result.questions if not q.manual):
        return budgets, []
    lost = "; ".join(f"{q.question}: {q.message}" for q in result.questions if q.message)
    auto = sum(q.points for q in ctx.spec.auto)
    return budgets, [
        f"the solutions notebook itself got {result.total:g} of {auto:g} automatic points: {lost}"
    ]


def read_solutions(solutions: Path) -> LabSpec:
    """The questions of a solutions notebook, refusing what cannot be one.

    Raises:
        FileNotFoundError: `solutions` is not a file. ValueError: it breaks the protocol, or it
        has no solution region (a released student notebook, whose hidden checks are gone).
    """
    if not solutions.is_file():
        raise FileNotFoundError(
            f"{solutions} is not a notebook file: pass the lab's solutions notebook, e.g. "
            "solutions/02_densenet_resnext.ipynb"
        )
    spec = parse_solutions(solutions)
    if spec.auto and BEGIN_SOLUTION not in solutions.read_text(encoding="utf-8"):
        raise ValueError(
            f"{solutions} has no {BEGIN_SOLUTION!r} region: it looks like a released student "
            "notebook, whose hidden checks are gone; grade with the solutions notebook"
        )
    return spec


def _grade_items(
    solutions: Path,
    items: list[Path],
    folder: Path,
    *,
    workers: int,
    settings: GradeSettings,
    on_result: Callable[[SubmissionResult], None] | None,
) -> GradingRun:
    start = time.perf_counter()
    spec = read_solutions(solutions)
    sandbox = find_sandbox(settings.sandbox)
    entries, originals = read_entries(items)
    before = set(folder.rglob("*"))
    lock, touched = threading.Lock(), set()
    results: dict[str, SubmissionResult] = {}
    scratch_root = Path(tempfile.mkdtemp(prefix="labkit-grade-", dir=settings.scratch))
    local, handles = threading.local(), []

    def worker() -> WorkerProcess:
        """This thread's worker process: one per parallel slot, reused (torch loads once)."""
        if not hasattr(local, "worker"):
            with lock:
                local.worker = WorkerProcess(
                    scratch_root / f"worker-{len(handles)}.log", settings.memory_bytes
                )
                handles.append(local.worker)
        return local.worker

    hidden = (solutions.resolve(), folder.resolve(), scratch_root.resolve())
    ctx = Context(spec, settings, sandbox, scratch_root, solutions, hidden, worker)
    warnings = [] if sandbox.active else [f"no sandbox: {sandbox.reason} (docs/GRADING.md)"]
    applied: set[str] = set()

    def restored(owners: set[str]) -> None:
        """Say so in the status of each owner whose files were restored (once, when graded)."""
        for owner in (owners & set(results)) - applied:
            applied.add(owner)
            results[owner].add(Status.RESTORED)
            results[owner].notes += [
                o.owner_note for o in originals if o.owner == owner and o.owner_note
            ]

    if sandbox.active:  # the sandbox shares the data folder read-only: write it first
        try:
            write_lab_data(spec.lab, settings.profile, data_root())
        except OSError as error:
            warnings.append(f"could not write the built-in data in {data_root()}: {error}")
    try:
        if settings.cell_timeout is None:
            budgets, found = _budgets(ctx)
            ctx = replace(ctx, budgets=budgets)
            warnings += found
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(grade_entry, ctx, e): e for e in entries}
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    result, _ = future.result()
                except Exception as error:  # a grader bug must not stop the other submissions
                    result = SubmissionResult(entry.student, str(entry.path))
                    result.add(Status.GRADER_ERROR, detail=f"{type(error).__name__}: {error}")
                    result.questions = [
                        QuestionResult(q.grade_id, 0.0, q.points, result.status, q.manual)
                        for q in spec.questions
                    ]
                results[entry.student] = result
                touched |= verify(originals, lock)
                restored(touched)
                if on_result is not None:
                    on_result(result)
    finally:
        for handle in handles:
            handle.close()
        if not settings.keep_scratch:
            shutil.rmtree(scratch_root, ignore_errors=True)
    touched |= verify(originals, lock)
    restored(touched)
    new = sorted(str(p) for p in set(folder.rglob("*")) - before)
    warnings += [f"files appeared in {folder} during grading: {new}"] if new else []
    if results and all(Status.OTHER_LAB in r for r in results.values()):
        warnings.append(
            f"every submission is another lab's notebook: is {solutions} the right lab?"
        )
    ordered = [results[e.student] for e in entries]
    return GradingRun(spec, ordered, time.perf_counter() - start, warnings, ctx.budgets)


def grade_folder(
    solutions: Path | str,
    submissions: Path | str,
    out_dir: Path | str | None = None,
    *,
    workers: int = 2,
    on_result: Callable[[SubmissionResult], None] | None = None,
    **settings: Any,
) -> GradingRun:
    """Grade every entry of `submissions` (a notebook, or a folder holding one, per student).

    Args:
        solutions: the lab's solutions notebook (its checks are the ones that run).
        submissions: the folder handed in; never modified (verified, restored if touched).
        out_dir: where gradebook.csv, results.json, feedback/, answers.* and manual_marks.csv
            go; None writes nothing.
        workers: submissions graded at once (each a worker process plus a kernel).
        on_result: called with each SubmissionResult as it is finished (e.g. to show progress).
        settings: `GradeSettings` fields: cell_timeout (s per cell; default None: budgets from
            the solutions' run), total_timeout (s per submission), memory_limit (GiB per
            kernel), profile, run_all, sandbox ("auto", "bwrap", "none"), scratch, ...
    Returns:
        The GradingRun: `.gradebook`, `.answers`, `.results`, `.feedback(student)`.
    Raises:
        NotADirectoryError: `submissions` is not a folder. ValueError: the solutions notebook
        breaks the protocol or does not run cleanly. SandboxError: sandbox="bwrap" cannot work.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise NotADirectoryError(
            f"{submissions} is not a folder of submissions: pass the folder that holds one "
            "notebook or one folder per student (grade_submission grades a single notebook)"
        )
    items = sorted(submissions.iterdir(), key=lambda p: p.name)
    settings.setdefault("threads", max(1, (os.cpu_count() or 1) // max(1, workers)))
    run = _grade_items(
        Path(solutions),
        items,
        submissions,
        workers=workers,
        on_result=on_result,
        settings=GradeSettings(**settings),
    )
    if out_dir is not None:
        run.write(Path(out_dir))
    return run


def grade_submission(
    solutions: Path | str,
    submission: Path | str,
    *,
    on_result: Callable[[SubmissionResult], None] | None = None,
    **settings: Any,
) -> SubmissionResult:
    """Grade one notebook (or one student's folder), with the guarantees of `grade_folder`.

    Keyword arguments are `GradeSettings` fields (cell_timeout, total_timeout, memory_limit, ...).
    """
    submission = Path(submission)
    run = _grade_items(
        Path(solutions),
        [submission],
        submission.parent,
        workers=1,
        settings=GradeSettings(**settings),
        on_result=on_result,
    )
    return run.results[0]
