"""`make lab` starts JupyterLab as root too: JupyterLab refuses root without --allow-root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lab_command(user_id: str) -> str:
    """The command `make lab` would run for that user id (`make -n`: printed, not run)."""
    result = subprocess.run(
        ["make", "-s", "-n", "lab", f"USER_ID={user_id}", "STAMP=pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_passes_allow_root_only_to_root() -> None:
    as_root, as_user = _lab_command("0"), _lab_command("1000")
    assert as_root.endswith("jupyter lab notebooks/ --allow-root")
    assert "jupyter lab notebooks/" in as_user and "--allow-root" not in as_user
