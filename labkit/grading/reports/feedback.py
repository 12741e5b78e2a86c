"""The Markdown a grading run writes: one feedback page per student, one sheet of free text.

Feedback shows points, the visible checks' messages and notes; never hidden checks or the values
they computed (those messages were already reduced to `labkit.grading.worker.checks.HIDDEN_FAILED`).
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.grading.authoring.protocol import LabSpec
from labkit.grading.reports.results import QuestionResult, SubmissionResult


def _question_text(q: QuestionResult) -> str:
    if not q.manual:
        return q.message or "All checks passed."
    if q.comment or q.message:  # a hand marker's comment, or why it could not be marked
        return q.comment or q.message
    return "Marked by hand." if q.points is not None else "Marked by hand; not marked yet."


def feedback_markdown(result: SubmissionResult, lab: str) -> str:
    """One student's feedback page: status, points table, a section per question, notes."""
    r = result
    pending = sum(q.max_points for q in r.questions if q.points is None)
    lines = [
        f"# {lab}: feedback for {r.student}",
        "",
        f"Status: {r.status}",
        "",
        f"Points: {r.total:g} / {r.max_points:g}"
        + (f" ({pending:g} still to be marked by hand)" if pending else ""),
        "",
        "| question | points | of |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {q.question} | {'-' if q.points is None else f'{q.points:g}'} | {q.max_points:g} |"
        for q in r.questions
    ]
    for q in r.questions:
        shown = "not marked yet" if q.points is None else f"{q.points:g}"
        lines += ["", f"## {q.question}: {shown} / {q.max_points:g}", "", _question_text(q)]
    if r.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in r.notes]]
    return "\n".join(lines) + "\n"


def answers_markdown(spec: LabSpec, lab: str, results: Sequence[SubmissionResult]) -> str:
    """Every student's answer to each hand-marked question, one question after the other."""
    lines = [f"# {lab}: answers to mark by hand"]
    for q in spec.manual:
        lines += ["", f"## {q.grade_id} ({q.points:g} points)"]
        for r in results:
            text = r.answers.get(q.grade_id, "").strip() or "*(no answer)*"
            lines += ["", f"### {r.student}", "", *[f"> {line}" for line in text.split("\n")]]
    return "\n".join(lines) + "\n"
