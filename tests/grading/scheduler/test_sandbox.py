"""Student code in the bwrap sandbox: it cannot read the solutions or another student's files,
reach the network or leave a process behind; the same submissions without the sandbox can."""

from __future__ import annotations

import copy
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
import toylab

from labkit.grading.scheduler.run import grade_folder
from labkit.grading.scheduler.sandbox import Sandbox, SandboxError, find_sandbox

pytestmark = pytest.mark.notebook

SANDBOX = find_sandbox("auto")
needs_bwrap = pytest.mark.skipif(
    not SANDBOX.active and not os.environ.get("CI"),
    reason=f"no sandbox here ({SANDBOX.reason}); .ci/run installs bubblewrap",
)

# Finds any notebook under /tmp holding answer regions and runs them (the marker is built at
# run time, so this cell itself is not found).
SEEKER = """
import os
begin = "### BEGIN " + "SOLUTION"
for root, dirs, files in os.walk("/tmp"):
    for name in files:
        if name.endswith(".ipynb"):
            try:
                text = open(os.path.join(root, name)).read()
            except OSError:
                continue
            if begin in text:
                import json
                for cell in json.loads(text)["cells"]:
                    source = "".join(cell["source"])
                    if cell["cell_type"] == "code" and source.startswith("# Answer"):
                        try:
                            exec(source, globals())
                        except Exception:  # another lab's answer: try the next
                            pass
"""

# Reads the other students' notebooks (in the submissions folder, or their scratch copies
# next to its own) and runs their answer cells.
PEEKER = """
import glob, json, os
scratch_root = os.path.dirname(os.path.dirname(os.getcwd()))
found = glob.glob(os.path.join({submissions!r}, "*.ipynb"))
found += glob.glob(os.path.join(scratch_root, "*", "work", "*.ipynb"))
for path in found:
    for cell in json.load(open(path))["cells"]:
        source = "".join(cell["source"])
        if source.startswith("# Answer") and "NotImplementedError" not in source:
            exec(source, globals())
"""

CALLER = """
import socket
with socket.create_connection(("127.0.0.1", {port}), timeout=5) as connection:
    connection.sendall(b"answers please")
"""

VANDAL = """
import pathlib
pathlib.Path({original!r}).write_text("overwritten")
"""

SPAWNER = """
import subprocess
subprocess.Popen(["sleep", "{seconds}"], start_new_session=True)
"""


def _with_cell(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells.insert(2, nbformat.v4.new_code_cell(source))
    return nb


def _sleepers(seconds: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == ["sleep", seconds]:
            found.append(process)
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """The toy lab's solutions and five submissions: one right, four trying to get out."""
    root = tmp_path_factory.mktemp("sandbox")
    solutions = toylab.write_solutions(root / "solutions")
    right = toylab.right(solutions)
    released = copy.deepcopy(right)
    for grade_id in ("q1_numbers", "q2_model"):
        toylab.set_answer(released, grade_id, "# YOUR CODE HERE\nraise NotImplementedError()")
    subs = root / "submissions"
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seconds = f"{4000 + os.getpid() % 1000}.5"  # a command line no other process has
    toylab.write(right, subs / "alice.ipynb")
    toylab.write(_with_cell(released, SEEKER), subs / "seeker.ipynb")
    toylab.write(_with_cell(released, PEEKER.format(submissions=str(subs))), subs / "peeker.ipynb")
    port = server.getsockname()[1]
    toylab.write(_with_cell(right, CALLER.format(port=port)), subs / "caller.ipynb")
    toylab.write(_with_cell(right, SPAWNER.format(seconds=seconds)), subs / "spawner.ipynb")
    # a folder: its answer reads a file beside the notebook, so it must start in that folder
    reads = toylab.set_answer(
        copy.deepcopy(right),
        "q1_numbers",
        "squares = [i * i for i in range(5)]\ntotal = int(open('total.txt').read())",
    )
    toylab.write(reads, subs / "frank" / "lab.ipynb")
    (subs / "frank" / "total.txt").write_text("10\n")
    vandal = subs / "vandal.ipynb"
    toylab.write(_with_cell(right, VANDAL.format(original=str(vandal))), vandal)
    yield solutions, subs, server, seconds
    server.close()
    for process in _sleepers(seconds):
        process.kill()


@dataclass
class Found:
    """What grading the lab's folder gave: points and statuses per student, what the
    grader's server received, processes left behind."""

    points: dict[str, tuple[float, float]]
    statuses: dict[str, str]
    sandbox: str
    warnings: list[str]
    received: list[bytes]
    leftovers: list[psutil.Process]


def _grade(lab, sandbox: str) -> Found:
    """Grade the lab's folder in `sandbox` mode."""
    solutions, subs, server, seconds = lab
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                received.append(connection.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    run = grade_folder(solutions, subs, workers=2, cell_timeout=60, sandbox=sandbox)
    stop.set()
    thread.join()
    book = run.gradebook.set_index("student")
    points = {s: (book.loc[s, "q1_numbers"], book.loc[s, "q2_model"]) for s in book.index}
    assert set(book["sandbox"]) == {run.results[0].sandbox}
    leftovers = _sleepers(seconds)
    for process in leftovers:
        process.kill()
    vandal = nbformat.read(subs / "vandal.ipynb", as_version=4)
    assert "overwritten" not in vandal.cells[2].source[:20]  # intact, or restored
    statuses = dict(book["status"])
    return Found(points, statuses, run.results[0].sandbox, run.warnings, received, leftovers)


@needs_bwrap
def test_student_code_in_the_sandbox_gets_nothing_out(lab) -> None:
    found = _grade(lab, "bwrap")
    assert found.sandbox == "bwrap" and not found.warnings
    points = found.points
    assert points["alice"] == (1.0, 2.0) and points["frank"] == (1.0, 2.0)
    # graded as if the cheating cell had done nothing: the stubs get nothing
    assert points["seeker"] == (0.0, 0.0), "the solutions notebook was readable"
    assert points["peeker"] == (0.0, 0.0), "another student's notebook was readable"
    # the cell that called out or spawned a process failed or was killed; its answers count
    assert points["caller"] == (1.0, 2.0) and points["spawner"] == (1.0, 2.0)
    assert found.received == [], "a kernel reached the grader's network"
    assert found.leftovers == [], "a kernel's process outlived the grading"
    # its write to its original by absolute path failed: nothing to restore
    assert found.statuses["vandal"] == "ok" and points["vandal"] == (1.0, 2.0)


@needs_bwrap
def test_the_same_submissions_without_a_sandbox_get_out(lab) -> None:
    """The control: each attack works when nothing isolates the kernel (so the test is real)."""
    found = _grade(lab, "none")
    assert found.sandbox.startswith("none") and "no sandbox" in found.warnings[0]
    assert found.points["seeker"] == (1.0, 2.0) and found.points["peeker"] == (1.0, 2.0)
    assert found.received == [b"answers please"]
    assert len(found.leftovers) == 1
    assert found.statuses["vandal"] == "restored a modified original"
    assert found.points["frank"] == (1.0, 2.0)


def test_sandbox_leaves_out_folders_that_hold_hidden_paths(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / ".venv").mkdir()
    argv = Sandbox("bwrap", "/usr/bin/bwrap").argv(
        tmp_path / "scratch",
        [course, course / ".venv", course / ".venv" / "lib"],
        hidden=[course / "solutions"],
    )
    bound = [argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"]
    assert str(course / ".venv") in bound
    assert str(course) not in bound and str(course / ".venv" / "lib") not in bound
    assert argv[-1] == "--" and "--unshare-all" in argv and "--die-with-parent" in argv


def test_find_sandbox_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_sandbox("none").label == "none: turned off (--sandbox none)"
    assert Sandbox("none", reason="x").argv(Path("/tmp"), [Path("/usr")]) == ()
    with pytest.raises(ValueError, match="not one of auto, bwrap, none"):
        find_sandbox("docker")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        find_sandbox("bwrap")
    assert "not installed" in find_sandbox("auto").reason
