"""Grading one submission: its notebook chosen, a scratch copy made, a worker's job run.

`grade_entry` never raises for a bad submission: what went wrong is in the result's status. The
kernel runs in the scratch copy, in the sandbox when there is one, with the run's environment
(`LABKIT_PROFILE`, its own `LABKIT_RUNS` and `HOME`, the shared read-only `LABKIT_DATA`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.config import data_root
from labkit.grading.authoring.locate import answer_text, locate
from labkit.grading.authoring.protocol import LabSpec, nbgrader_meta
from labkit.grading.reports.gradebook import slug
from labkit.grading.reports.results import QuestionResult, Status, SubmissionResult
from labkit.grading.scheduler.intake import Entry, pick_notebook, read_notebook
from labkit.grading.scheduler.sandbox import Sandbox, readable_paths
from labkit.grading.scheduler.tally import tally
from labkit.grading.scheduler.worker_handle import WorkerProcess, labkit_parent, python_path
from labkit.grading.worker.jobs import Job, Limits

PASSED_ON = ("PATH", "LANG", "LANGUAGE", "TZ", "CUDA_VISIBLE_DEVICES")  # from the grader's env
GRACE_S = 120.0  # past the total time-out, how long a worker may take to wrap up before the kill


@dataclass(frozen=True)
class GradeSettings:
    """How each submission runs."""

    cell_timeout: float | None = None  # s per cell; None: budgets from the solutions' own run
    total_timeout: float = 3600.0  # s per submission, replays after a kernel restart included
    memory_limit: float = 6.0  # GiB of data segment per kernel (and per worker)
    profile: str = "smoke"  # LABKIT_PROFILE of the kernels
    run_all: bool = False  # also run the cells after the last answer cell (they change no grade)
    threads: int = 1  # OMP/MKL threads per kernel
    scratch: Path | None = None  # where the scratch folders go (default: the system's temp)
    keep_scratch: bool = False  # keep each scratch folder (to debug a submission)
    sandbox: str = "auto"  # "auto" (bwrap where it works), "bwrap" (required) or "none"
    budget_factor: float = 10.0  # a question's budget: factor x the solutions' seconds ...
    budget_extra_s: float = 60.0  # ... plus this many seconds

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_limit * 2**30)


@dataclass(frozen=True)
class Context:
    """What every submission of one run shares."""

    spec: LabSpec
    settings: GradeSettings
    sandbox: Sandbox
    scratch_root: Path
    solutions: Path
    hidden: tuple[Path, ...]  # never visible in the sandbox: solutions, submissions, scratch
    worker: Callable[[], WorkerProcess]
    budgets: dict[str, float] | None = None


def _kernel_env(scratch: Path, settings: GradeSettings) -> dict[str, str]:
    """The kernel's environment: none of the grader's own variables (tokens, paths) but the
    locale, PATH and the GPU choice, then labkit's."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ON or k.startswith("LC_")}
    threads = str(settings.threads)
    env.update(
        LABKIT_PROFILE=settings.profile,
        LABKIT_RUNS=str(scratch / "runs"),  # no student resumes another's checkpoint
        LABKIT_DATA=str(data_root()),  # read-only in the sandbox
        HOME=str(scratch / "home"),  # caches and configs stay in the scratch folder
        MPLBACKEND="Agg",
        IPYTHONDIR=str(scratch / "ipython"),  # history databases never shared between kernels
        PYTHONPATH=python_path(),
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def _sources_only(nb: dict) -> dict:
    """What a worker needs of a notebook: cell types, sources, grading metadata (no outputs)."""
    cells = [
        {
            "cell_type": c.get("cell_type"),
            "source": c.get("source", ""),
            "metadata": {"nbgrader": nbgrader_meta(c)} if nbgrader_meta(c) else {},
        }
        for c in nb.get("cells", [])
    ]
    return {"cells": cells, "metadata": {}}


def _choose_notebook(entry: Entry, ctx: Context, result: SubmissionResult) -> dict | None:
    """The notebook to run, or None with the result's status saying why there is none."""
    if entry.path.is_dir():
        chosen, note = pick_notebook(entry, ctx.spec, ctx.solutions.name)
        result.notes += [note] if note else []
        if chosen is None:
            result.add(Status.NO_NOTEBOOK)
    elif entry.path.suffix != ".ipynb":
        chosen = None
        result.add(Status.NOT_A_NOTEBOOK)
    else:
        chosen = next(iter(entry.files), None)
        if chosen is None:
            result.add(Status.NOT_READABLE)
    result.notes += [f"could not read {u}" for u in entry.unreadable]
    if chosen is None:
        return None
    result.notebook = str(chosen)
    status, nb = read_notebook(entry.files[chosen], ctx.spec)
    if status is not None:
        result.add(status)
        return None
    return nb


def grade_entry(ctx: Context, entry: Entry) -> tuple[SubmissionResult, dict[str, float]]:
    """Grade one student's entry, and the seconds each question's cells ran (never raises for a
    bad submission)."""
    start = time.perf_counter()
    result = SubmissionResult(entry.student, str(entry.path), sandbox=ctx.sandbox.label)
    nb = _choose_notebook(entry, ctx, result)
    if nb is None:
        result.questions = [
            QuestionResult(q.grade_id, 0.0, q.points, result.status, q.manual)
            for q in ctx.spec.questions
        ]
        result.seconds = time.perf_counter() - start
        return result, {}
    located = locate(nb, ctx.spec)
    result.notes += located.notes
    for question in ctx.spec.manual:
        index = located.answers[question.grade_id]
        result.answers[question.grade_id] = (
            answer_text(nb["cells"][index]) if index is not None else ""
        )
    settings = ctx.settings
    prefix = slug(entry.student)[:20] + "-"
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=ctx.scratch_root))
    try:
        workdir = scratch / "work"
        for rel, data in entry.files.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_bytes(data)
        (scratch / "home").mkdir()
        readable = readable_paths([labkit_parent() / "labkit", data_root()])
        kernel_dir = (workdir / result.notebook).parent  # the notebook's own folder
        job = Job(
            id=0,
            spec=ctx.spec,
            notebook=_sources_only(nb),
            scratch=str(scratch),
            workdir=str(kernel_dir),
            env=_kernel_env(scratch, settings),
            limits=Limits(
                settings.total_timeout, settings.memory_bytes, settings.cell_timeout, ctx.budgets
            ),
            run_all=settings.run_all,
            sandbox_argv=ctx.sandbox.argv(scratch, readable, ctx.hidden, kernel_dir),
        )
        events, stopped = ctx.worker().grade(job, settings.total_timeout + GRACE_S)
    finally:
        if not settings.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    timings = tally(result, ctx.spec, events, stopped, settings.total_timeout)
    result.seconds = time.perf_counter() - start
    return result, timings
