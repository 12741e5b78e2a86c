"""What grading found: statuses, one result per question and per submission.

A submission's status is a list of `Outcome`s, each a `Status` (what happened) with where it
happened and a detail; the gradebook shows them as one line of text, joined by "; ", and "ok"
when there are none. Code tests statuses by membership (`Status.TOTAL_TIMEOUT in result`), never
by comparing text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class Status(Enum):
    """What can go wrong with a submission; each value is how the gradebook words it."""

    EMPTY = "empty"
    NOT_A_NOTEBOOK = "not a notebook"
    NOT_READABLE = "not readable"
    NO_NOTEBOOK = "no notebook in folder"
    OTHER_LAB = "another lab's notebook"
    NO_QUESTIONS = "no question cells found"
    TIMEOUT = "time-out in {where}"
    TOTAL_TIMEOUT = "total time-out"
    KERNEL_DIED = "kernel died in {where}"
    OUT_OF_MEMORY = "out of memory in {where}"
    KERNEL_START_FAILED = "kernel failed to start: {detail}"
    KERNEL_RESTART_FAILED = "kernel failed to restart: {detail}"
    REPLAY_FAILED = "replay failed at {where}"
    GAVE_UP = "gave up after {detail} kernel restarts"
    GRADER_ERROR = "grader error: {detail}"
    RESTORED = "restored a modified original"


@dataclass(frozen=True)
class Outcome:
    """One status of a submission: what happened, in which cell or question, and a detail."""

    status: Status
    where: str = ""
    detail: str = ""

    @property
    def text(self) -> str:
        return self.status.value.format(where=self.where, detail=self.detail)

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.name, "where": self.where, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict) -> Outcome:
        """The outcome `to_dict` wrote; KeyError names an unknown status."""
        return cls(Status[data["status"]], data.get("where", ""), data.get("detail", ""))


def status_text(outcomes: list[Outcome]) -> str:
    """The gradebook's status line: each distinct outcome once, in order; "ok" when none."""
    texts = list(dict.fromkeys(o.text for o in outcomes))
    return "; ".join(texts) if texts else "ok"


@dataclass
class QuestionResult:
    """One question of one submission."""

    question: str
    points: float | None  # None: marked by hand and not marked yet
    max_points: float
    message: str = ""  # why points were lost ("" when full marks)
    manual: bool = False
    comment: str = ""  # the hand marker's comment


@dataclass
class SubmissionResult:
    """One student's grade: outcomes, points per question, free-text answers, notes."""

    student: str
    path: str  # the file or folder handed in
    outcomes: list[Outcome] = field(default_factory=list)
    questions: list[QuestionResult] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # hand-marked question -> answer
    notes: list[str] = field(default_factory=list)
    notebook: str = ""  # the notebook graded, relative to `path`'s folder
    seconds: float = 0.0
    sandbox: str = ""  # what isolated the student's code ("none: why" when nothing did)

    @property
    def status(self) -> str:
        """The status line of the gradebook ("ok" when nothing went wrong)."""
        return status_text(self.outcomes)

    def __contains__(self, status: Status) -> bool:
        return any(o.status is status for o in self.outcomes)

    def add(self, status: Status, where: str = "", detail: str = "") -> None:
        self.outcomes.append(Outcome(status, where, detail))

    @property
    def total(self) -> float:
        return sum(q.points or 0.0 for q in self.questions)

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outcomes"] = [o.to_dict() for o in self.outcomes]
        data["status"] = self.status  # for readers of results.json; ignored when loaded
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        """The result `to_dict` wrote; ValueError for a file written before outcomes existed."""
        if "outcomes" not in data:
            raise ValueError(
                "results.json was written by an older labkit (no outcomes); grade again"
            )
        fields = {k: v for k, v in data.items() if k != "status"}
        fields["outcomes"] = [Outcome.from_dict(o) for o in data["outcomes"]]
        fields["questions"] = [QuestionResult(**q) for q in data["questions"]]
        return cls(**fields)
