"""A browser-suite test that fails on purpose, with a kernel running.

Not collected by name (it does not start with `test_`): test_server_cleanup.py runs it in a
separate pytest and checks that the server and its kernel are gone afterwards.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import psutil
import pytest


@pytest.mark.browser
def test_fails_with_a_kernel_running(jupyterlab) -> None:
    request = urllib.request.Request(
        f"{jupyterlab.url}/api/kernels?token={jupyterlab.token}", data=b"{}", method="POST"
    )
    urllib.request.urlopen(request, timeout=30)
    server_pid = int((jupyterlab.root / "jupyterlab.pid").read_text())
    tree = psutil.Process(server_pid).children(recursive=True)
    Path(os.environ["LABKIT_CLEANUP_REPORT"]).write_text(
        json.dumps({"url": jupyterlab.url, "pids": [server_pid] + [p.pid for p in tree]})
    )
    pytest.fail("failing on purpose: the server must still be stopped")
