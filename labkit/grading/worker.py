"""One grading worker: `python -m labkit.grading.worker` grades one submission.

It reads a job (JSON) on stdin, runs the submission's cells in a kernel of its own, exports the
answers' values after each answer cell, runs the solutions' checks on them here (a process the
student's code never ran in) and reports each event as one JSON line on stdout as it happens, so
a worker killed at the total time-out still leaves everything it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.grading.checks import run_checks
from labkit.grading.export import ExportError, decode, export_code, load_exports
from labkit.grading.kernel import CellOutcome, Kernel, KernelStartError
from labkit.grading.protocol import LabSpec, Question, locate

Emit = Callable[..., None]
MAX_RESTARTS = 3  # kernel restarts (each replays the cells that ran) before giving up


@dataclass(frozen=True)
class Step:
    """One code cell to run: its index in the notebook, its code, the question it answers."""

    index: int
    source: str
    question: Question | None = None

    @property
    def label(self) -> str:
        return self.question.grade_id if self.question else f"cell {self.index + 1}"


def plan(nb: dict, spec: LabSpec, run_all: bool = False) -> tuple[list[Step], list[Question]]:
    """The cells to run in order (checks cells left out) and the questions without an answer cell.

    Cells after the last answer cell cannot change a grade, so they are left out unless `run_all`
    (or an answer cell is missing: then its values are read after the last cell).
    """
    located = locate(nb, spec)
    by_cell = {located.answers[q.grade_id]: q for q in spec.auto}
    steps = [
        Step(i, cell.get("source", ""), by_cell.get(i))
        for i, cell in enumerate(nb.get("cells", []))
        if cell.get("cell_type") == "code"
        and i not in located.skip
        and cell.get("source", "").strip()
    ]
    unlocated = [q for q in spec.auto if located.answers[q.grade_id] is None]
    answered = [n for n, s in enumerate(steps) if s.question is not None]
    if not run_all and not unlocated and answered:
        steps = steps[: answered[-1] + 1]
    return steps, unlocated


def _import_checks_modules() -> None:
    import torch

    import labkit.models  # noqa: F401 - what the checks and module rebuilds use

    torch.set_num_threads(1)


class Grader:
    """Drives one submission's kernel: steps, exports, checks, restarts with replay."""

    def __init__(self, job: dict, emit: Emit, imports: threading.Thread):
        self.job, self.emit, self.imports = job, emit, imports
        self.spec = LabSpec.from_dict(job["spec"])
        self.scratch = Path(job["scratch"])
        self.cell_timeout = float(job["cell_timeout"])
        self.deadline = time.monotonic() + float(job["total_timeout"])
        self.kernel = Kernel(
            Path(job["workdir"]), job["env"], self.scratch / "kernel", int(job["memory_limit"])
        )
        self.ran: list[Step] = []  # steps that ran fine: replayed after a restart
        self.restarts = 0
        self.exports = 0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def status(self, text: str) -> None:
        self.emit(event="status", text=text)

    def result(self, question: Question, points: float, message: str) -> None:
        self.emit(event="question", id=question.grade_id, points=points, message=message)

    def run_step(self, step: Step):
        """Run one step with the time left; report time-outs, deaths and memory as statuses."""
        budget = min(self.cell_timeout, self.left())
        if budget <= 0:
            return CellOutcome("total")
        outcome = self.kernel.run(step.source, budget)
        if outcome.status == "timeout":
            total = budget < self.cell_timeout
            self.status("total time-out" if total else f"time-out in {step.label}")
            if total:
                return CellOutcome("total")
        elif outcome.status == "died":
            self.status(f"kernel died in {step.label}")
        elif outcome.status == "memory":
            self.status(f"out of memory in {step.label}")
        elif outcome.status == "error":
            self.emit(event="note", text=f"{step.label} raised {outcome.error}")
        return outcome

    def restart(self) -> bool:
        """A fresh kernel with every cell that ran fine replayed; False when that fails."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self.status(f"gave up after {MAX_RESTARTS} kernel restarts")
            return False
        try:
            self.kernel.start()
        except KernelStartError as error:
            self.status(f"kernel failed to restart: {str(error)[:200]}")
            return False
        self.emit(event="kernel", pid=self.kernel.pid)
        for step in self.ran:
            budget = min(self.cell_timeout, self.left())
            outcome = self.kernel.run(step.source, budget) if budget > 0 else None
            if outcome is None or outcome.restart or outcome.status == "timeout":
                self.status(f"replay failed at {step.label}")
                return False
        return True

    def export_and_check(self, question: Question, note: str = "") -> bool:
        """Export the question's names from the kernel, check them here; False: kernel gone."""
        self.imports.join()  # labkit.models, for the checks and the rebuilt modules
        self.exports += 1
        path = self.scratch / "exports" / f"{self.exports:03d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        budget = min(self.cell_timeout, self.left())
        outcome = self.kernel.run(export_code(question.names, path), budget, silent=True)
        if outcome.status != "ok":
            self.result(
                question,
                0.0,
                f"the answer's values could not be exported ({outcome.status}"
                f"{': ' + outcome.error if outcome.error else ''})",
            )
            return not outcome.restart
        try:
            raw = load_exports(path)
            values = {
                name: decode(raw.get(name, {"~": "missing"}), name) for name in question.names
            }
        except ExportError as error:
            self.result(question, 0.0, str(error))
            return True
        except Exception as error:  # a forged export that breaks decoding: not the student's pass
            self.result(
                question, 0.0, f"the exported values are malformed ({type(error).__name__})"
            )
            return True
        finally:
            path.unlink(missing_ok=True)
        points, message = run_checks(question, values)
        if note and points < question.points:
            message = f"{message} ({note})" if message else note
        self.result(question, points, message)
        return True

    def run(self, nb: dict, run_all: bool) -> None:
        """Run the planned cells, grading each answer as it comes; statuses as events."""
        steps, unlocated = plan(nb, self.spec, run_all)
        try:
            self.kernel.start()
        except KernelStartError as error:
            self.status(f"kernel failed to start: {str(error)[:300]}")
            return
        self.emit(event="kernel", pid=self.kernel.pid)
        alive = True
        for number, step in enumerate(steps, start=1):
            outcome = self.run_step(step)
            if outcome.status == "total":
                return
            if outcome.status in ("ok", "error") and step.question:
                note = f"the answer cell raised {outcome.error}" if outcome.error else ""
                alive = self.export_and_check(step.question, note)
            elif step.question:
                reason = {
                    "timeout": f"the answer cell ran past the time-out of {self.cell_timeout:g} s",
                    "died": "the kernel died while the answer cell ran",
                    "memory": "the answer cell ran out of memory "
                    f"(limit {int(self.job['memory_limit']) / 2**30:g} GiB)",
                }[outcome.status]
                self.result(step.question, 0.0, reason)
            if outcome.status == "ok":
                self.ran.append(step)
            more = number < len(steps) or unlocated  # else a restart would serve nothing
            if (outcome.restart or not alive) and more and not self.restart():
                return
            alive = True
        for question in unlocated:
            note = (
                f"no answer cell found (no grade_id {question.grade_id!r} and no "
                f"'# Answer {question.grade_id}' line); values read after the last cell"
            )
            if self.left() <= 0 or not self.export_and_check(question, note):
                return

    def close(self) -> None:
        self.kernel.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m labkit.grading.worker [memory limit in bytes]`.

    Reads one job (JSON) per line on stdin until it closes; writes one event per line on stdout,
    each tagged with its job's id, and `{"event": "done"}` after each job.
    """
    argv = sys.argv[1:] if argv is None else argv
    limit = int(argv[0]) if argv else 0
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else prints goes to the log, never into the event stream
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    imports = threading.Thread(target=_import_checks_modules, daemon=True)
    imports.start()  # torch and labkit load while the first kernel runs its first cells
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)

        def emit(**event) -> None:
            channel.write(json.dumps({"job": job["id"], **event}) + "\n")  # noqa: B023

        grader = Grader(job, emit, imports)
        try:
            grader.run(job["notebook"], bool(job.get("run_all")))
        except Exception as error:  # a grader bug ends this job, never the worker
            emit(event="status", text=f"grader error: {type(error).__name__}: {error}"[:300])
        finally:
            grader.close()
        emit(event="done")
    return 0


# ---------------------------------------------------------------- the grader's side of a worker


def labkit_parent() -> Path:
    """The folder that holds the labkit package (a checkout, or site-packages)."""
    return Path(__file__).resolve().parents[2]


def python_path() -> str:
    """PYTHONPATH for workers and kernels: labkit's folder first, then the caller's."""
    parts = [str(labkit_parent()), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


# `python -m labkit.grading.worker` would load this module twice (the package imports it too)
_ENTRY = "import sys; from labkit.grading.worker import main; sys.exit(main())"


class WorkerProcess:
    """The grader's handle on one worker process, reused for one submission after another.

    A worker that runs past a job's time limit is killed with its kernels, and the next job
    starts a new one; so is a worker that dies.
    """

    def __init__(self, log: Path, memory_limit: int):
        self.log, self.memory_limit = Path(log), int(memory_limit)
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
        self.jobs = 0

    def _spawn(self) -> None:
        env = {**os.environ, "PYTHONPATH": python_path(), "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, str(self.memory_limit)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=labkit_parent(),  # never a folder a student's kernel writes to
                env=env,
                start_new_session=True,
            )
        lines: queue.Queue = queue.Queue()
        self.lines = lines
        stdout = self.proc.stdout

        def read() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()

    def grade(self, job: dict, timeout: float) -> tuple[list[dict], str]:
        """Run one job; its events, and why it did not finish ("" when it did)."""
        if self.proc is None or self.proc.poll() is not None:
            self._spawn()
        self.jobs += 1
        job = {**job, "id": self.jobs}
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        events, pids = [], []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.kill(pids)
                return events, "total time-out"
            if line is None:
                code = self.proc.wait()
                self.kill(pids)
                tail = self.log.read_text(errors="replace").strip().split("\n")[-1][:200]
                return events, f"grader error (worker exit {code}): {tail}"
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("job") != job["id"]:
                continue
            if event.get("event") == "done":
                return events, ""
            events.append(event)
            if event.get("event") == "kernel":
                pids.append(int(event["pid"]))

    def kill(self, kernels: list[int] = ()) -> None:
        """Kill the worker and the kernels it started (each in its own process group)."""
        for pid in [self.proc.pid if self.proc else None, *kernels]:
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        """Let the worker finish (stdin closed), or kill it after a few seconds."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
            self.proc = None
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


if __name__ == "__main__":
    sys.exit(main())
