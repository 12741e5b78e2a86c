"""Session set-up shared by the unit tests and the notebooks nbval executes."""

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Smoke profile, headless plots and a scratch runs folder, before any kernel starts."""
    os.environ.setdefault("LABKIT_PROFILE", "smoke")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Checkpoints of this session only: a notebook must never resume from an earlier run.
    os.environ["LABKIT_RUNS"] = tempfile.mkdtemp(prefix="labkit-runs-")
