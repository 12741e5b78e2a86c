"""The solutions' checks, run on values exported from a student's kernel (in a grading worker).

A checks cell runs with `exec` in a fresh namespace holding only the exported values; it does its
own imports, so it gets the grader's numpy, torch and labkit, never the student's. A failure
message comes from a visible assert; a failure on a line inside a hidden-tests region gives only
`HIDDEN_FAILED`, so feedback never shows hidden code or the values it computed.
"""

from __future__ import annotations

import builtins
import traceback
from collections.abc import Mapping
from typing import Any

from labkit.config import seed_everything
from labkit.grading.authoring.protocol import Check, Question
from labkit.grading.worker.decoder import Missing

HIDDEN_FAILED = "a hidden check failed"


def _run_check(check: Check, values: Mapping[str, Any]) -> tuple[bool, str]:
    """Run one checks cell on exported values; a failure message never shows hidden code."""
    filename = f"<checks {check.grade_id}>"
    seed_everything(0)  # checks that draw inputs draw the same ones for every student
    namespace = {"__name__": "labkit_checks", "__builtins__": builtins, **values}
    try:
        exec(compile(check.code, filename, "exec", dont_inherit=True), namespace)  # noqa: S102
    except Exception as error:  # any failure of a check is a failed check
        lines = [
            n for f, n in traceback.walk_tb(error.__traceback__) if f.f_code.co_filename == filename
        ]
        if not lines or set(lines) & set(check.hidden_lines):
            return False, HIDDEN_FAILED
        if isinstance(error, AssertionError):
            line = check.code.split("\n")[lines[-1] - 1].strip()
            return False, str(error) or f"check failed: {line}"
        return False, f"{type(error).__name__}: {error}"[:300]
    return True, ""


def run_checks(question: Question, values: Mapping[str, Any]) -> tuple[float, str]:
    """Points and message of one question: each checks cell all or nothing (nbgrader's rule)."""
    missing = [n for n in question.names if n not in values or isinstance(values[n], Missing)]
    if missing:
        return 0.0, f"{', '.join(missing)} not defined where the notebook reaches the checks"
    points, messages = 0.0, []
    for check in question.checks:
        passed, message = _run_check(check, values)
        points += check.points if passed else 0.0
        messages += [] if passed else [message]
    return points, "; ".join(dict.fromkeys(messages))
