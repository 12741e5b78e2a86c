"""One grading worker: a process that grades one submission after another.

It reads a `Job` (one JSON line) on stdin, runs the submission's cells in a kernel of its own,
exports the answers' values after each answer cell, runs the solutions' checks on them here (a
process the student's code never ran in) and reports each event as one JSON line on stdout as it
happens, so a worker killed at the total time-out still leaves everything it finished.

Time: each question's cells (those after the previous answer cell, up to its own) share the
question's budget when the job has budgets, and each cell has the per-cell time-out when it has
one; the total time-out bounds everything, replays after a kernel restart included.
"""

from __future__ import annotations

import math
import os
import resource
import secrets
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from labkit.grading.authoring.protocol import Question
from labkit.grading.reports.results import Status
from labkit.grading.worker.checks import run_checks
from labkit.grading.worker.decoder import ExportError, decode, export_code, load_exports
from labkit.grading.worker.jobs import (
    TAIL,
    Done,
    Event,
    Graded,
    Job,
    KernelStarted,
    Note,
    StatusEvent,
    Timed,
    encode_event,
)
from labkit.grading.worker.kernel_client import CellOutcome, Ended, Kernel, KernelStartError
from labkit.grading.worker.provenance import (
    dump_code,
    handed_over,
    install_code,
    judge_calls,
    read_record,
    start_code,
    stop_code,
)
from labkit.grading.worker.steps import Step, plan

Emit = Callable[[Event], None]
MAX_RESTARTS = 3  # kernel restarts (each replays the cells that ran) before giving up
# the recording's key for the questions whose answer cell was not found: their answers may be in
# any cell, so what every cell of the student's calls counts for them
UNLOCATED = "~unlocated"


def _import_checks_modules() -> None:
    import torch

    import labkit.models  # noqa: F401 - what the checks and module rebuilds use

    torch.set_num_threads(1)


class Grader:
    """Drives one submission's kernel: steps, exports, checks, restarts with replay."""

    def __init__(self, job: Job, emit: Emit, imports: threading.Thread):
        self.job, self.emit, self.imports = job, emit, imports
        self.limits = job.limits
        self.scratch = Path(job.scratch)
        self.deadline = time.monotonic() + job.limits.total_timeout
        self.kernel = Kernel(
            Path(job.workdir),
            job.env,
            self.scratch / "kernel",
            job.limits.memory_limit,
            job.sandbox_argv,
        )
        self.ran: list[Step] = []  # steps that ran fine: replayed after a restart
        self.spent: dict[str, float] = {}  # seconds each budget key's cells ran
        self.budgets = dict(job.limits.budgets or {})
        self.last_limit: tuple[float, str] = (math.inf, "total")  # of the latest step
        self.restarts = 0
        self.exports = 0
        # the call recording: its name in the kernel's sys.modules, the student's cells, and the
        # questions whose answer cell ran and that are not graded yet -> where in `ran` it ran
        self.token = f"_labkit_calls_{secrets.token_hex(8)}"
        self.student_sources: list[str] = []
        self.recording: dict[str, int] = {}
        self.answers: dict[str, str] = {}  # question -> the source of its answer cell

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def status(self, status: Status, where: str = "", detail: str = "") -> None:
        self.emit(StatusEvent.of(status, where, detail))

    def result(self, question: Question, points: float, message: str) -> None:
        was_open = self.recording.pop(question.grade_id, None) is not None
        if was_open and not self.recording and self.kernel.alive():
            self.control(stop_code(self.token))  # graded without its export: stop recording
        self.emit(Graded(question.grade_id, points, message))

    def step_limit(self, step: Step) -> tuple[float, str]:
        """Seconds `step` may run, and what sets that limit: "total", "cell" or "budget"."""
        limits = [(self.left(), "total")]
        if self.limits.cell_timeout is not None:
            limits.append((self.limits.cell_timeout, "cell"))
        if self.limits.budgets is not None:
            budget = self.budgets.get(step.segment, math.inf)
            limits.append((budget - self.spent.get(step.segment, 0.0), "budget"))
        return min(limits)

    def run_step(self, step: Step) -> CellOutcome | None:
        """Run one step within its limit; report time-outs, deaths and memory as statuses.

        None: the total time-out ended the submission.
        """
        limit, reason = self.step_limit(step)
        self.last_limit = (limit, reason)
        if reason == "total" and limit <= 0:
            self.status(Status.TOTAL_TIMEOUT)
            return None
        outcome = self.kernel.run(step.source, max(limit, 0.0))
        self.spent[step.segment] = self.spent.get(step.segment, 0.0) + outcome.seconds
        if outcome.ended is Ended.TIMEOUT:
            if reason == "total":
                self.status(Status.TOTAL_TIMEOUT)
                return None
            self.status(Status.TIMEOUT, step.label)
        elif outcome.ended is Ended.DIED:
            self.status(Status.KERNEL_DIED, step.label)
        elif outcome.ended is Ended.MEMORY:
            self.status(Status.OUT_OF_MEMORY, step.label)
        elif outcome.ended is Ended.ERROR:
            self.emit(Note(f"{step.label} raised {outcome.error}"))
        return outcome

    def lost_reason(self, step: Step, outcome: CellOutcome) -> str:
        """Why a question whose cell did not finish gets no points."""
        if outcome.ended is Ended.TIMEOUT:
            if self.last_limit[1] == "budget":
                budget = self.budgets[step.segment]
                return f"its cells ran past the question's time budget of {budget:.0f} s"
            cell = "the answer cell" if step.answer or step.opens else step.label
            return f"{cell} ran past the time-out of {self.limits.cell_timeout:g} s"
        if outcome.ended is Ended.DIED:
            return "the kernel died while the answer cell ran"
        gib = self.limits.memory_limit / 2**30
        return f"the answer cell ran out of memory (limit {gib:g} GiB)"

    def restart(self) -> bool:
        """A fresh kernel with every cell that ran fine replayed; False when that fails."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self.status(Status.GAVE_UP, detail=str(MAX_RESTARTS))
            return False
        try:
            self.kernel.start()
        except KernelStartError as error:
            self.status(Status.KERNEL_RESTART_FAILED, detail=str(error)[:200])
            return False
        self.emit(KernelStarted(self.kernel.pid))
        if not self.install_recorder():
            return False
        restart_at = min(self.recording.values(), default=None)
        for position, step in enumerate(self.ran):
            if position == restart_at and not self.control(start_code(self.token)):
                return False
            budget = min(self.limits.cell_timeout or math.inf, self.left())
            outcome = self.kernel.run(step.source, budget) if budget > 0 else None
            if outcome is None or outcome.restart or outcome.ended is Ended.TIMEOUT:
                self.status(Status.REPLAY_FAILED, step.label)
                return False
        return True

    def control(self, code: str) -> bool:
        """Run the grader's own code in the kernel (silently); False when it failed."""
        budget = min(self.limits.cell_timeout or math.inf, self.left(), 60.0)
        return self.kernel.run(code, max(budget, 1.0), silent=True).ended is Ended.OK

    def install_recorder(self) -> bool:
        """The call recorder in a fresh kernel, before any of the student's code runs."""
        if self.control(install_code(self.token, self.student_sources)):
            return True
        self.status(Status.GRADER_ERROR, detail="the call recorder could not be installed")
        return False

    def open_recording(self, step: Step) -> None:
        """Before a question's answer cell: record what the student's code calls from here."""
        if step.opens is None or step.opens not in self.auto_ids:
            return
        if not self.recording:
            self.control(start_code(self.token))
        self.recording.setdefault(step.opens, len(self.ran))
        self.answers[step.opens] = step.source

    def recorded_verdict(self, question: Question, last: bool = True) -> str:
        """Stop recording for `question`: why its recorded calls cost its points ("" if not).

        A question without an answer cell is judged on what all the student's cells called
        (`UNLOCATED`); `last` is False while another such question is still to be graded.
        """
        key = question.grade_id if question.grade_id in self.recording else UNLOCATED
        if key not in self.recording:
            return "the grader could not record which functions your answer called; regrade it"
        if key != UNLOCATED or last:
            del self.recording[key]
        path = self.scratch / "exports" / f"{self.exports:03d}-calls.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        sources = [self.answers.get(question.grade_id, "")]
        if key == UNLOCATED:  # its answer may be any of the student's cells
            sources = self.student_sources
        bound = handed_over(sources, question)
        self.control(dump_code(self.token, path, stop=not self.recording, bound=bound))
        record = read_record(path)
        path.unlink(missing_ok=True)
        allowed = question.allowed
        if key == UNLOCATED:  # every cell's calls count: what any question allows is allowed
            allowed = tuple(n for q in self.job.spec.auto for n in q.allowed)
        return judge_calls(record, question.forbidden, allowed)

    def export_and_check(self, question: Question, note: str = "", last: bool = True) -> bool:
        """Export the question's names from the kernel, check them here; False: kernel gone."""
        self.imports.join()  # labkit.models, for the checks and the rebuilt modules
        self.exports += 1
        verdict = self.recorded_verdict(question, last)
        path = self.scratch / "exports" / f"{self.exports:03d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        budget = min(self.limits.cell_timeout or math.inf, self.left())
        outcome = self.kernel.run(export_code(question.names, path), budget, silent=True)
        if outcome.ended is not Ended.OK:
            error = f": {outcome.error}" if outcome.error else ""
            why = f"the answer's values could not be exported ({outcome.ended.value}{error})"
            self.result(question, 0.0, why)
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
            why = f"the exported values are malformed ({type(error).__name__})"
            self.result(question, 0.0, why)
            return True
        finally:
            path.unlink(missing_ok=True)
        points, message = run_checks(question, values)
        if verdict:
            points, message = 0.0, verdict
        if note and points < question.points:
            message = f"{message} ({note})" if message else note
        self.result(question, points, message)
        return True

    def run(self, nb: dict) -> None:
        """Run the planned cells, grading each answer as it comes; statuses as events."""
        steps, unlocated = plan(nb, self.job.spec, self.job.run_all)
        self.auto_ids = {q.grade_id for q in self.job.spec.auto}
        self.student_sources = list(dict.fromkeys(s.source for s in steps if s.origin == "student"))
        for question in unlocated:  # their cells are somewhere after the last answer cell
            extra = self.budgets.pop(question.grade_id, 0.0)
            self.budgets[TAIL] = self.budgets.get(TAIL, 0.0) + extra
        try:
            self.kernel.start()
        except KernelStartError as error:
            self.status(Status.KERNEL_START_FAILED, detail=str(error)[:300])
            return
        self.emit(KernelStarted(self.kernel.pid))
        if not self.install_recorder():
            return
        if unlocated:  # their answers may be in any cell: record every cell's calls for them
            self.recording[UNLOCATED] = 0
            self.control(start_code(self.token))
        alive = True
        # a question one of whose cells (its answer cell, or a cell before it) ran past its
        # limit gets 0, even when the cell had defined the answer before it was interrupted
        timed_out: dict[str, str] = {}
        for number, step in enumerate(steps, start=1):
            self.open_recording(step)
            outcome = self.run_step(step)
            if outcome is None:
                return
            if outcome.ended is Ended.TIMEOUT and step.segment != TAIL:
                timed_out.setdefault(step.segment, self.lost_reason(step, outcome))
            if step.question is not None:
                self.emit(Timed(step.segment, self.spent.get(step.segment, 0.0)))
            deferred = None  # graded after the restart: a cell after its answer killed the kernel
            if step.question and step.question.grade_id in timed_out:
                self.result(step.question, 0.0, timed_out[step.question.grade_id])
            elif step.question and (outcome.ended in (Ended.OK, Ended.ERROR) or not step.answer):
                if outcome.restart:
                    deferred = step.question
                else:
                    cell = "the answer cell" if step.answer or step.opens else step.label
                    note = f"{cell} raised {outcome.error}" if outcome.error else ""
                    alive = self.export_and_check(step.question, note)
            elif step.question:
                self.result(step.question, 0.0, self.lost_reason(step, outcome))
            if outcome.ended is Ended.OK:
                self.ran.append(step)
            more = number < len(steps) or unlocated or deferred  # else a restart serves nothing
            if (outcome.restart or not alive) and more and not self.restart():
                if deferred:
                    self.result(deferred, 0.0, "the kernel could not be restarted to grade it")
                return
            graded = not deferred or self.export_and_check(deferred, f"{step.label} was skipped")
            if not graded and number < len(steps) and not self.restart():
                return
            alive = True
        if TAIL in self.spent:
            self.emit(Timed(TAIL, self.spent[TAIL]))
        for number, question in enumerate(unlocated, start=1):
            note = (
                f"no answer cell found (no grade_id {question.grade_id!r} and no "
                f"'# Answer {question.grade_id}' line); values read after the last cell"
            )
            last = number == len(unlocated)
            if self.left() <= 0 or not self.export_and_check(question, note, last):
                return

    def close(self) -> None:
        self.kernel.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -c <ENTRY> [memory limit in bytes]` (see
    `labkit.grading.scheduler.worker_handle`).

    Reads one job per line on stdin until it closes; writes one event per line on stdout, each
    tagged with its job's id, and `Done` after each job.
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
        job = Job.from_json(line)

        def emit(event: Event) -> None:
            channel.write(encode_event(job.id, event) + "\n")  # noqa: B023

        grader = Grader(job, emit, imports)
        try:
            grader.run(job.notebook)
        except Exception as error:  # a grader bug ends this job, never the worker
            detail = f"{type(error).__name__}: {error}"[:300]
            emit(StatusEvent.of(Status.GRADER_ERROR, detail=detail))
        finally:
            grader.close()
        emit(Done())
    return 0
