"""The browser suite stops JupyterLab and its kernels also when a test fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).parent


@pytest.mark.browser
def test_a_failing_test_leaves_no_server_or_kernel(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--browser", "-p", "no:xdist", "-p", "no:cacheprovider",
         "-q", str(HERE / "failing_case.py")],
        env={**os.environ, "LABKIT_CLEANUP_REPORT": str(report)},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "failing on purpose" in run.stdout
    started = json.loads(report.read_text())
    assert len(started["pids"]) >= 2, "the case should have started a server and a kernel"
    alive = [pid for pid in started["pids"] if psutil.pid_exists(pid)]
    alive = [p for p in alive if psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"still running after the failed test: {alive}"
    with pytest.raises(OSError):
        urllib.request.urlopen(started["url"], timeout=2)
