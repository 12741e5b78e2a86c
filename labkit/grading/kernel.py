"""One student's kernel: started with a memory limit, fed one cell at a time, interrupted or killed.

The kernel is an ipykernel process started by a short launcher that first lowers its data-segment
limit (RLIMIT_DATA: counts heap and anonymous mappings, not the shared libraries that the CUDA
build of torch maps, so `import torch` works under a few GiB) and asks to be killed when its
grading worker dies (PR_SET_PDEATHSIG). It talks to the grader over local sockets only.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

# Runs as `python -c LAUNCHER <limit bytes> -f <connection file>`, then becomes the kernel.
LAUNCHER = r"""
import resource, sys
limit = int(sys.argv.pop(1))  # set before anything loads
if limit > 0:
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: die with the grader
except (OSError, AttributeError):
    pass
if sys.path and sys.path[0] == "":
    del sys.path[0]
try:
    import torch  # loaded before any student code: the value export needs a whole torch
except ImportError:
    pass
from ipykernel import kernelapp, zmqshell
def _exit(self, keep_kernel=False):
    raise SystemExit("exit() does not stop the kernel while grading")
zmqshell.ZMQExitAutocall.__call__ = _exit  # an exit() is an error in its cell, like SystemExit
kernelapp.launch_new_instance()
"""
INTERRUPT_GRACE_S = 5.0  # after SIGINT, how long a cell may take to stop before the kill
_MAX_IPC_PATH = 90  # AF_UNIX paths stop at 107 bytes; longer folders use TCP on localhost


class KernelStartError(RuntimeError):
    """The kernel did not start (the message carries the end of its log)."""


@dataclass(frozen=True)
class CellOutcome:
    """How one execution ended: ok, error, timeout, died or memory."""

    status: str
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    restart: bool = False  # the kernel is gone or unusable: start a new one

    @property
    def error(self) -> str:
        return f"{self.ename}: {self.evalue}".strip(": ") if self.ename else ""


def is_memory_error(ename: str, evalue: str) -> bool:
    """An error that means the kernel hit its memory limit (Python's, NumPy's or torch's)."""
    text = evalue.lower()
    return ename in ("MemoryError", "OutOfMemoryError", "_ArrayMemoryError") or (
        ename == "RuntimeError" and ("can't allocate memory" in text or "out of memory" in text)
    )


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class Kernel:
    """An ipykernel in `workdir`, with `env`, its sockets and log in `folder`."""

    def __init__(self, workdir: Path, env: dict[str, str], folder: Path, memory_limit: int = 0):
        self.workdir, self.env, self.folder = Path(workdir), env, Path(folder)
        self.memory_limit = int(memory_limit)
        self.proc: subprocess.Popen | None = None
        self.client: BlockingKernelClient | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def log(self) -> Path:
        return self.folder / f"kernel-{self.starts}.log"

    def start(self, timeout: float = 120.0) -> None:
        """Launch a new kernel and wait until it answers; KernelStartError if it does not."""
        self.shutdown()
        self.starts += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        connection = self.folder / f"kernel-{self.starts}.json"
        ipc = self.folder / f"ipc-{self.starts}"
        transport = "ipc" if len(str(ipc)) < _MAX_IPC_PATH else "tcp"
        write_connection_file(
            fname=str(connection),
            ip=str(ipc) if transport == "ipc" else "127.0.0.1",
            transport=transport,
            key=secrets.token_hex(16).encode(),
        )
        command = [sys.executable, "-c", LAUNCHER, str(self.memory_limit), "-f", str(connection)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
            )
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(connection))
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        msg_id = self.client.kernel_info()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            reply = self._shell_reply(msg_id, 0.2)
            if reply is not None:
                return
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        self.shutdown()
        raise KernelStartError(f"the kernel did not start within {timeout:.0f} s: {tail.strip()}")

    def _shell_reply(self, msg_id: str, wait: float) -> dict | None:
        """The shell reply to `msg_id` if one arrives within `wait` seconds."""
        try:
            msg = self.client.get_shell_msg(timeout=wait)
        except queue.Empty:
            return None
        return msg if msg.get("parent_header", {}).get("msg_id") == msg_id else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, code: str, timeout: float, *, silent: bool = False) -> CellOutcome:
        """Run `code`; past `timeout` interrupt it, then kill the kernel if that is not enough."""
        start = time.monotonic()
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False
        )
        interrupted = None
        next_memory_check = start
        while True:
            reply = self._shell_reply(msg_id, 0.1)
            now = time.monotonic()
            if reply is not None:
                content = reply.get("content", {})
                ename, evalue = str(content.get("ename", "")), str(content.get("evalue", ""))
                if interrupted is not None:
                    return CellOutcome("timeout", ename, evalue, now - start)
                if content.get("status") == "ok":
                    return CellOutcome("ok", seconds=now - start)
                if is_memory_error(ename, evalue):
                    # a global may still hold the memory: then start afresh
                    held = _rss_bytes(self.proc.pid) > self.memory_limit // 2
                    if held:
                        self.shutdown()
                    return CellOutcome("memory", ename, evalue[:500], now - start, restart=held)
                return CellOutcome("error", ename, evalue[:500], now - start)
            if not self.alive():
                return CellOutcome("died", seconds=now - start, restart=True)
            if self.memory_limit and now >= next_memory_check:
                next_memory_check = now + 0.5
                if _rss_bytes(self.proc.pid) > self.memory_limit:
                    self.shutdown()
                    return CellOutcome(
                        "memory",
                        "MemoryError",
                        "resident memory above the limit",
                        now - start,
                        restart=True,
                    )
            if interrupted is None and now - start > timeout:
                interrupted = now
                os.kill(self.proc.pid, signal.SIGINT)
            elif interrupted is not None and now - interrupted > INTERRUPT_GRACE_S:
                self.shutdown()
                return CellOutcome("timeout", seconds=now - start, restart=True)

    def shutdown(self) -> None:
        """Kill the kernel and everything it started; close the sockets."""
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
