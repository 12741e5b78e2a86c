"""The solutions' checks run in the worker on exported values: visible messages, hidden
failures that never show hidden code, all-or-nothing checks cells; no kernel."""

from __future__ import annotations

import pytest
import toylab

from labkit.grading.authoring.protocol import Check, Question, parse_solutions
from labkit.grading.worker.checks import run_checks
from labkit.grading.worker.decoder import Missing
from labkit.models import densenet_bc


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):
    return parse_solutions(toylab.write_solutions(tmp_path_factory.mktemp("toy")))


def test_checks_pass_and_fail_with_visible_messages(spec) -> None:
    q1, q2 = spec.auto
    squares = [0, 1, 4, 9, 16]
    assert run_checks(q1, {"total": 10, "squares": squares}) == (1.0, "")
    assert run_checks(q1, {"total": "10", "squares": squares}) == (
        0.0,
        "total should be a whole number",
    )
    assert run_checks(q1, {"total": Missing("total"), "squares": squares})[1] == (
        "total not defined where the notebook reaches the checks"
    )
    assert run_checks(q2, {"net": densenet_bc(block_config=(1, 1), growth_rate=4)}) == (2.0, "")
    assert run_checks(q2, {"net": densenet_bc(block_config=(1, 2), growth_rate=4)}) == (
        0.0,
        "net needs 6 convolution layers",
    )


def test_hidden_failures_never_show_hidden_code(spec) -> None:
    q1 = spec.auto[0]
    points, message = run_checks(q1, {"total": 10, "squares": [1, 2]})
    assert (points, message) == (0.0, "a hidden check failed")
    check = Check(
        "h",
        1.0,
        "x = len(value)\n### BEGIN HIDDEN TESTS\nassert x == 42, f'x is {x}'\n### END HIDDEN TESTS",
        (2, 3, 4),
    )
    question = Question("h", "code", 1.0, (check,), ("value",))
    assert run_checks(question, {"value": [1]}) == (0.0, "a hidden check failed")  # not "x is 1"


def test_visible_errors_are_explained() -> None:
    check = Check("v", 1.0, "assert len(value) == 2\nassert value[0] == 1", ())
    question = Question("v", "code", 1.0, (check,), ("value",))
    assert run_checks(question, {"value": None})[1].startswith("TypeError: object of type")
    assert run_checks(question, {"value": [0, 1]})[1] == "check failed: assert value[0] == 1"


def test_checks_cells_are_all_or_nothing_and_add_up() -> None:
    checks = (
        Check("a", 1.0, "assert value > 0, 'positive'", ()),
        Check("b", 2.0, "assert value > 5, 'above 5'", ()),
    )
    question = Question("two", "code", 3.0, checks, ("value",))
    assert run_checks(question, {"value": 3}) == (1.0, "above 5")
    assert run_checks(question, {"value": 9}) == (3.0, "")
