"""Fixtures shared by the unit tests, and where their helper modules are found.

The tests mirror the package: tests/<package>/test_<module>.py (no __init__.py files, so every
test module's name is unique). A helper module (no test_ prefix) sits next to the tests that use
it, and is imported by its bare name: its folder is on the import path while those tests run
(pytest puts it there). The helpers of tests/labs (the question harness, lab 03 at a toy size)
and of tests/grading (the toy lab, crafted submissions) serve other folders too, so their folders
are put on the path here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import labkit.training.loop

for _helpers in ("labs", "grading"):
    _folder = str(Path(__file__).resolve().parent / _helpers)
    if _folder not in sys.path:
        sys.path.insert(0, _folder)


@pytest.fixture
def interrupt_fit(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """`interrupt_fit(epoch)`: the next `fit` stops as a dropped kernel would when it starts
    `epoch`, raising KeyboardInterrupt; later calls of `fit` run normally."""

    def arm(epoch: int) -> None:
        run_epoch = labkit.training.loop._run_epoch

        def dropped(*args, **kwargs):
            if kwargs["epoch"] == epoch:
                monkeypatch.setattr(labkit.training.loop, "_run_epoch", run_epoch)
                raise KeyboardInterrupt("kernel dropped")
            return run_epoch(*args, **kwargs)

        monkeypatch.setattr(labkit.training.loop, "_run_epoch", dropped)

    return arm


@pytest.fixture
def no_plt_show(monkeypatch: pytest.MonkeyPatch):
    """A plot function that calls `plt.show()` fails the test (they return their figure); the
    test's figures are closed after it. Use with `pytest.mark.usefixtures("no_plt_show")`."""

    def fail(*args, **kwargs):
        raise AssertionError("plot functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")
