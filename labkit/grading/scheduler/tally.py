"""A worker's events turned into one submission's result: statuses, points, notes, timings."""

from __future__ import annotations

from labkit.grading.authoring.protocol import LabSpec
from labkit.grading.reports.results import Outcome, QuestionResult, Status, SubmissionResult
from labkit.grading.worker.jobs import Event, Graded, Note, StatusEvent, Timed

MAX_NOTES = 20  # errors of a student's own cells listed in the feedback


def tally(
    result: SubmissionResult,
    spec: LabSpec,
    events: list[Event],
    stopped: Outcome | None,
    total_timeout: float,
) -> dict[str, float]:
    """Fill `result` from `events` (and `stopped`, why the worker did not finish); returns the
    seconds each budget key's cells ran."""
    outcomes = [e.outcome for e in events if isinstance(e, StatusEvent)]
    outcomes += [stopped] if stopped is not None else []
    result.outcomes += outcomes
    notes = [e.text for e in events if isinstance(e, Note)]
    result.notes += notes[:MAX_NOTES]
    if len(notes) > MAX_NOTES:
        result.notes.append(f"... and {len(notes) - MAX_NOTES} more")
    graded = {e.question: e for e in events if isinstance(e, Graded)}
    if Status.TOTAL_TIMEOUT in result:
        reason = f"the notebook ran past the total time-out of {total_timeout:g} s"
    else:
        reason = outcomes[0].text if outcomes else "the grader stopped"
    for question in spec.questions:
        if question.manual:
            found = QuestionResult(question.grade_id, None, question.points, manual=True)
        elif question.grade_id in graded:
            event = graded[question.grade_id]
            found = QuestionResult(
                question.grade_id, float(event.points), question.points, event.message
            )
        else:
            found = QuestionResult(question.grade_id, 0.0, question.points, f"not graded: {reason}")
        result.questions.append(found)
    return {e.segment: e.seconds for e in events if isinstance(e, Timed)}
