"""Session set-up shared by the unit tests and the notebooks nbval executes."""

import os
import shutil
import tempfile

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--browser",
        action="store_true",
        help="also run the browser suite (tests/browser: JupyterLab in chromium)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Smoke profile, headless plots and a scratch runs folder, before any kernel starts."""
    os.environ.setdefault("LABKIT_PROFILE", "smoke")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Checkpoints of this session only: a notebook must never resume from an earlier run.
    config.labkit_runs = tempfile.mkdtemp(prefix="labkit-runs-")
    os.environ["LABKIT_RUNS"] = config.labkit_runs


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the scratch runs folder this process made (each xdist worker makes its own)."""
    runs = getattr(config, "labkit_runs", None)
    if runs:
        shutil.rmtree(runs, ignore_errors=True)
