"""The grader's side of a grading worker: start it, hand it jobs, read its events, kill it.

One `WorkerProcess` per parallel slot is reused for one submission after another (torch loads
once). A worker that runs past a job's time limit is killed with its kernels, and the next job
starts a new one; so is a worker that dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import labkit
from labkit.grading.reports.results import Outcome, Status
from labkit.grading.worker.jobs import Done, Event, Job, KernelStarted, decode_event


def labkit_parent() -> Path:
    """The folder that holds the labkit package (a checkout, or site-packages)."""
    return Path(labkit.__file__).resolve().parents[1]


def python_path() -> str:
    """PYTHONPATH for workers and kernels: labkit's folder first, then the caller's."""
    parts = [str(labkit_parent()), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


# the worker's entry point, run with `python -c` (`-m` would run the driver as `__main__`, a
# second copy of the module next to the one the package imports)
_ENTRY = "import sys; from labkit.grading.worker.driver import main; sys.exit(main())"


class WorkerProcess:
    """The grader's handle on one worker process, reused for one submission after another."""

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

    def _exit_outcome(self) -> Outcome:
        code = self.proc.wait() if self.proc else None
        tail = self.log.read_text(errors="replace").strip().split("\n")[-1][:200]
        return Outcome(Status.GRADER_ERROR, detail=f"worker exit {code}: {tail}")

    def grade(self, job: Job, timeout: float) -> tuple[list[Event], Outcome | None]:
        """Run one job (its id is replaced); its events, and why it did not finish (or None)."""
        if self.proc is None or self.proc.poll() is not None:
            self._spawn()
        self.jobs += 1
        job_id = self.jobs
        text = dataclasses.replace(job, id=job_id).to_json() + "\n"
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except OSError as error:  # the worker is gone before the job reached it
            outcome = self._exit_outcome()
            self.kill()
            detail = f"the job did not reach the worker ({error}); {outcome.detail}"
            return [], Outcome(Status.GRADER_ERROR, detail=detail)
        events: list[Event] = []
        kernels: list[int] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.kill(kernels)
                return events, Outcome(Status.TOTAL_TIMEOUT)
            if line is None:
                outcome = self._exit_outcome()
                self.kill(kernels)
                return events, outcome
            try:
                line_job, event = decode_event(line.decode(errors="replace"))
            except ValueError as error:  # a grader bug: end the job, keep what it found
                self.kill(kernels)
                return events, Outcome(Status.GRADER_ERROR, detail=str(error)[:300])
            if line_job != job_id:
                continue  # a late event of a job this handle gave up on
            if isinstance(event, Done):
                return events, None
            events.append(event)
            if isinstance(event, KernelStarted) and event.pid:
                kernels.append(event.pid)

    def kill(self, kernels: list[int] = ()) -> None:
        """Kill the worker and the kernels it started (each in its own process group)."""
        for pid in [self.proc.pid if self.proc else None, *kernels]:
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError):  # already gone: nothing to kill
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
        except (OSError, subprocess.TimeoutExpired):  # a stuck or broken worker is killed
            self.kill()
