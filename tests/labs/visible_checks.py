"""What the released checks of a lab's question may show: no forbidden callable, no reference.

A question's list of forbidden calls stands in its hidden tests; its visible checks compare with
literal values, so they name neither a forbidden callable (a class or function by its short name
too) nor any of the references a lab's test names.
"""

from __future__ import annotations

import importlib
import re

from labkit.grading.authoring.protocol import Question


def is_module(name: str) -> bool:
    """Whether the dotted `name` is an importable module (else a class, a function, or absent)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def assert_no_reference_in_sight(question: Question, references: tuple[str, ...] = ()) -> None:
    """The question forbids some calls, and none of its visible checks shows one of them or one
    of `references`."""
    assert question.forbidden, f"{question.grade_id}: no forbidden calls listed in its hidden tests"
    for check in question.checks:
        visible = check.visible_code
        assert "Forbidden calls" not in visible, check.grade_id
        for name in question.forbidden:
            assert name not in visible, (check.grade_id, name)
            if "." in name and not is_module(name):  # a class or a function: not its short name
                assert not re.search(rf"\b{re.escape(name.rsplit('.', 1)[1])}\b", visible), name
        for reference in references:
            assert reference not in visible, (check.grade_id, reference)
