"""The records both sides of a worker's process boundary share, and statuses as data."""

from __future__ import annotations

from pathlib import Path

import pytest
import toylab

from labkit.grading.authoring.protocol import parse_solutions
from labkit.grading.reports.results import Outcome, Status, SubmissionResult, status_text
from labkit.grading.worker.jobs import (
    EVENT_TYPES,
    Done,
    Graded,
    Job,
    KernelStarted,
    Limits,
    Note,
    StatusEvent,
    Timed,
    decode_event,
    encode_event,
)


def test_a_job_survives_its_json_line(tmp_path: Path) -> None:
    spec = parse_solutions(toylab.write_solutions(tmp_path))
    limits = Limits(100.0, 2**30, None, {"q1_numbers": 61.5, "": 60.0})
    job = Job(7, spec, {"cells": []}, "/s", "/s/work", {"A": "1"}, limits, True, ("bwrap", "--"))
    line = job.to_json()
    assert "\n" not in line and Job.from_json(line) == job


@pytest.mark.parametrize(
    "event",
    [
        KernelStarted(41),
        StatusEvent.of(Status.TIMEOUT, "q1_numbers"),
        Note("cell 3 raised NameError: x"),
        Graded("q1_numbers", 1.0, ""),
        Timed("q1_numbers", 2.5),
        Done(),
    ],
)
def test_every_event_survives_its_json_line(event) -> None:
    assert decode_event(encode_event(3, event)) == (3, event)
    assert EVENT_TYPES[event.kind] is type(event)


@pytest.mark.parametrize(
    "line", ['{"job": 1, "event": "unknown"}', '{"event": "note", "text": "x"}', "not json"]
)
def test_a_line_that_is_not_an_event_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="not a grading event"):
        decode_event(line)


def test_statuses_read_as_the_gradebook_words_them() -> None:
    result = SubmissionResult("ann", "ann.ipynb")
    assert result.status == "ok" and Status.TIMEOUT not in result
    result.add(Status.TIMEOUT, "cell 4")
    result.add(Status.TIMEOUT, "cell 4")
    result.add(Status.GAVE_UP, detail="3")
    assert result.status == "time-out in cell 4; gave up after 3 kernel restarts"
    assert Status.TIMEOUT in result
    assert status_text([Outcome(Status.GRADER_ERROR, detail="x")]) == "grader error: x"
    assert SubmissionResult.from_dict(result.to_dict()) == result
    old = {k: v for k, v in result.to_dict().items() if k != "outcomes"}
    with pytest.raises(ValueError, match="older labkit"):
        SubmissionResult.from_dict(old)
