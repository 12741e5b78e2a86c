"""The browser suite: JupyterLab from the project's environment, driven by Debian's chromium
through Playwright. Runs only when asked (`make test-browser`, or `pytest --browser`): it needs
`chromium` (`apt-get install chromium`) and the `playwright` package, never a downloaded browser.

The notebooks are copied into a scratch folder first, so JupyterLab's autosave never touches the
checkout; runs and data go to scratch folders too (`LABKIT_RUNS`, `LABKIT_DATA`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--browser"):
        return
    skip = pytest.mark.skip(reason="the browser suite runs with --browser (make test-browser)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: its URL with the token, and the scratch folder it serves."""

    def __init__(self, url: str, token: str, root: Path) -> None:
        self.url, self.token, self.root = url, token, root

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}&reset"


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    for folder in ("notebooks", "solutions"):
        shutil.copytree(ROOT / folder, root / folder)
    # every cell rendered (JupyterLab 4 renders only the visible ones by default), so tests can
    # read any cell; no news or update pop-ups
    settings = root / "config" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none"}'
    )
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "LABKIT_PROFILE": "smoke",
        "LABKIT_RUNS": str(root / "runs"),
        "LABKIT_DATA": str(root / "data"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    argv = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
    ]  # fmt: skip
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    (root / "jupyterlab.pid").write_text(str(server.pid))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = (root / "jupyterlab.log").read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start; its log: {tail}") from None
                time.sleep(0.5)
        yield Lab(url, token, root)
    finally:  # stopped also when a test failed
        stop_server(server)
        log.close()


def stop_server(server: subprocess.Popen) -> None:
    """Stop JupyterLab and everything it started (kernels run in sessions of their own).

    SIGTERM lets the server shut its kernels down; whatever of its process tree is still alive
    after 20 s is killed.
    """
    try:
        tree = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    _, alive = psutil.wait_procs(tree, timeout=20)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api as playwright_api

    if not Path(CHROMIUM).exists():
        pytest.fail("the browser suite needs Debian's chromium: apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page; its console errors are collected in `page.console_errors`."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    new_page.console_errors = errors
    yield new_page
    context.close()
