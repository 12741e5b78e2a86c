"""The records that cross a grading worker's process boundary: one job in, events out.

The grader writes a `Job` as one JSON line on the worker's stdin; the worker answers with one
JSON line per event on its stdout (`KernelStarted`, `StatusEvent`, `Note`, `Graded`, then
`Done`), each tagged with the job's id. Both sides use these classes, so a field renamed on one
side cannot silently go missing on the other: decoding a line that does not fit raises.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from labkit.grading.authoring.protocol import LabSpec
from labkit.grading.reports.results import Outcome, Status

TAIL = ""  # the budget key of the cells after the last answer cell


@dataclass(frozen=True)
class Limits:
    """Time and memory a submission may use.

    `budgets` maps each question's grade_id to the seconds its cells may take together (the cells
    after the previous answer cell up to its own), and `TAIL` to the cells after the last one;
    None means no budgets, only `cell_timeout` per cell. `cell_timeout` None means no per-cell
    limit beyond the budgets. The total time-out bounds everything, replays included.
    """

    total_timeout: float
    memory_limit: int  # bytes of data segment per kernel (0: none)
    cell_timeout: float | None = None
    budgets: dict[str, float] | None = None


@dataclass(frozen=True)
class Job:
    """One submission for a worker: its notebook's sources, where to run, and its limits."""

    id: int
    spec: LabSpec
    notebook: dict  # cell types, sources and nbgrader metadata only
    scratch: str  # the submission's scratch folder (kernel files, exports)
    workdir: str  # the kernel's working folder, inside `scratch`
    env: dict[str, str]
    limits: Limits
    run_all: bool = False
    sandbox_argv: tuple[str, ...] = ()  # put before the kernel's command ("": no sandbox)

    def to_json(self) -> str:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, line: str) -> Job:
        data = json.loads(line)
        data["spec"] = LabSpec.from_dict(data["spec"])
        data["limits"] = Limits(**data["limits"])
        data["sandbox_argv"] = tuple(data["sandbox_argv"])
        return cls(**data)


@dataclass(frozen=True)
class Event:
    """Something a worker reports about a job."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class KernelStarted(Event):
    """A kernel (process group `pid`) runs the job: killed with the worker if it overruns."""

    kind: ClassVar[str] = "kernel"
    pid: int


@dataclass(frozen=True)
class StatusEvent(Event):
    """Something that went wrong, for the submission's status."""

    kind: ClassVar[str] = "status"
    outcome: Outcome

    @classmethod
    def of(cls, status: Status, where: str = "", detail: str = "") -> StatusEvent:
        return cls(Outcome(status, where, detail))


@dataclass(frozen=True)
class Note(Event):
    """An error of the student's own code, for the feedback's notes."""

    kind: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True)
class Graded(Event):
    """One question graded: points and the message shown."""

    kind: ClassVar[str] = "question"
    question: str
    points: float
    message: str


@dataclass(frozen=True)
class Timed(Event):
    """Seconds a budget key's cells ran in all (a question's grade_id, or `TAIL`)."""

    kind: ClassVar[str] = "timed"
    segment: str
    seconds: float


@dataclass(frozen=True)
class Done(Event):
    """The job is finished; the worker takes the next one."""

    kind: ClassVar[str] = "done"


EVENT_TYPES: dict[str, type[Event]] = {
    t.kind: t for t in (KernelStarted, StatusEvent, Note, Graded, Timed, Done)
}


def encode_event(job_id: int, event: Event) -> str:
    """One event as the JSON line a worker writes."""
    data: dict[str, Any] = {f.name: getattr(event, f.name) for f in fields(event)}
    if isinstance(event, StatusEvent):
        data["outcome"] = event.outcome.to_dict()
    return json.dumps({"job": job_id, "event": event.kind, **data})


def decode_event(line: str) -> tuple[int, Event]:
    """`(job id, event)` of one line; ValueError names a line that is not an event."""
    try:
        data = json.loads(line)
        kind = EVENT_TYPES[data.pop("event")]
        job_id = int(data.pop("job"))
        if kind is StatusEvent:
            data["outcome"] = Outcome.from_dict(data["outcome"])
        return job_id, kind(**data)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not a grading event: {line[:200]!r} ({error})") from error
