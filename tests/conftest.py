"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import pytest

import labkit.training.loop


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
