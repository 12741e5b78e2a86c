"""The Makefile's targets: `make lab` starts JupyterLab as root too (JupyterLab refuses root
without --allow-root); `make test-fast` leaves out the tests its markers name."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _commands(target: str, *variables: str) -> str:
    """What `make target` would run (`make -n`: printed, not run)."""
    result = subprocess.run(
        ["make", "-s", "-n", target, *variables, "STAMP=pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_make_lab_passes_allow_root_only_to_root() -> None:
    as_root = _commands("lab", "USER_ID=0").splitlines()[-1]
    as_user = _commands("lab", "USER_ID=1000").splitlines()[-1]
    assert as_root.endswith("jupyter lab notebooks/ --allow-root")
    assert "jupyter lab notebooks/" in as_user and "--allow-root" not in as_user


def test_make_test_fast_lints_and_leaves_out_registered_markers_only(
    pytestconfig: pytest.Config,
) -> None:
    commands = _commands("test-fast")
    assert "ruff check ." in commands and "pytest -n 2 tests" in commands
    (expression,) = re.findall(r'-m "([^"]+)"', commands)
    left_out = re.findall(r"not (\w+)", expression)
    assert left_out == ["notebook", "kernel", "slow", "browser"]
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(left_out) <= registered  # a misspelt marker would leave out nothing
