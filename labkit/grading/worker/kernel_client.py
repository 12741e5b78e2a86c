"""One student's kernel: started with a memory limit (in a sandbox), fed one cell at a time.

jupyter_client's `KernelManager` starts, interrupts and kills the kernel; the kernel spec it
starts is written into the submission's scratch folder. Its command is an optional sandbox
prefix (`labkit.grading.scheduler.sandbox`), then a short launcher that lowers the data-segment
limit (RLIMIT_DATA counts heap and anonymous mappings, not the shared libraries that the CUDA build
of torch maps, so `import torch` works under a few GiB), asks to be killed when its grading
worker dies (PR_SET_PDEATHSIG) and becomes ipykernel. Kernel traffic uses IPC sockets in the
scratch folder (TCP on localhost only without a sandbox, when the folder's path is too long).
Interrupts are messages on the control channel, so they reach a kernel in a PID namespace.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import psutil
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

# Runs as `python -c LAUNCHER <limit bytes> -f <connection file>`, then becomes the kernel.
LAUNCHER = r"""
import os, resource, sys
limit = int(sys.argv.pop(1))  # set before anything loads
if limit > 0:
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    import ctypes, signal
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: die with the grader
except (OSError, AttributeError) as error:
    print(f"labkit: no PR_SET_PDEATHSIG ({error}); the grader kills the kernel", file=sys.stderr)
os.environ.pop("JPY_PARENT_PID", None)  # its parent may be a sandbox's init: not a reason to exit
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
KERNEL_NAME = "labkit-grading"
INTERRUPT_GRACE_S = 5.0  # after the interrupt, how long a cell may take to stop before the kill
MAX_IPC_PATH = 90  # AF_UNIX paths stop at 107 bytes (jupyter_client appends "-<port>")


class KernelStartError(RuntimeError):
    """The kernel did not start (the message carries the end of its log)."""


class Ended(Enum):
    """How one execution ended."""

    OK = "ok"
    ERROR = "error"  # the code raised
    TIMEOUT = "timeout"
    DIED = "died"
    MEMORY = "memory"


@dataclass(frozen=True)
class CellOutcome:
    """How one execution ended, in how many seconds, and whether the kernel must be replaced."""

    ended: Ended
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


def tree_rss_bytes(pid: int | None) -> int:
    """Resident memory of a process and everything under it (0 when it is gone or None)."""
    if pid is None:
        return 0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # ended while we looked: it holds nothing
            continue
    return total


class Kernel:
    """An ipykernel in `workdir`, with `env`; its spec, sockets and logs in `folder`."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        folder: Path,
        memory_limit: int = 0,
        sandbox_argv: tuple[str, ...] = (),
    ):
        self.workdir, self.env, self.folder = Path(workdir), env, Path(folder)
        self.memory_limit = int(memory_limit)
        self.sandbox_argv = tuple(sandbox_argv)
        self.manager: KernelManager | None = None
        self.client = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The process (group) that holds the kernel: the sandbox's, when there is one."""
        provisioner = self.manager.provisioner if self.manager else None
        return getattr(provisioner, "pid", None)

    @property
    def log(self) -> Path:
        return self.folder / f"kernel-{self.starts}.log"

    def _kernel_specs(self) -> KernelSpecManager:
        """A spec folder holding only the grading kernel (never the machine's own kernels)."""
        spec_dir = self.folder / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.sandbox_argv, sys.executable, "-c", LAUNCHER, str(self.memory_limit)]
        spec = {
            "argv": [*argv, "-f", "{connection_file}"],
            "display_name": "labkit grading",
            "language": "python",
            "interrupt_mode": "message",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        return KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])

    def start(self, timeout: float = 120.0) -> None:
        """Launch a new kernel and wait until it answers; KernelStartError if it does not."""
        self.shutdown()
        self.starts += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        ipc = self.folder / f"ipc-{self.starts}"
        use_ipc = len(str(ipc)) < MAX_IPC_PATH
        if not use_ipc and self.sandbox_argv:
            raise KernelStartError(
                f"{self.folder} is too long a path for the kernel's IPC sockets in the sandbox "
                f"(at most {MAX_IPC_PATH - 10} characters); grade with a shorter scratch folder"
            )
        self.manager = KernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=self._kernel_specs(),
            connection_file=str(self.folder / f"kernel-{self.starts}.json"),
            transport="ipc" if use_ipc else "tcp",
            ip=str(ipc) if use_ipc else "127.0.0.1",
        )
        with open(self.log, "wb") as log:
            self.manager.start_kernel(
                cwd=str(self.workdir), env=self.env, stdout=log, stderr=log, independent=False
            )
        self.client = self.manager.client()
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        msg_id = self.client.kernel_info()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            if self._shell_reply(msg_id, 0.2) is not None:
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
        return self.manager is not None and self.manager.is_alive()

    def _over_memory(self) -> bool:
        return self.memory_limit > 0 and tree_rss_bytes(self.pid) > self.memory_limit

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
                return self._ended(reply.get("content", {}), interrupted is not None, now - start)
            if not self.alive():
                return CellOutcome(Ended.DIED, seconds=now - start, restart=True)
            if now >= next_memory_check:
                next_memory_check = now + 0.5
                if self._over_memory():
                    self.shutdown()
                    why = "resident memory above the limit"
                    return CellOutcome(Ended.MEMORY, "MemoryError", why, now - start, True)
            if interrupted is None and now - start > timeout:
                interrupted = now
                self.manager.interrupt_kernel()
            elif interrupted is not None and now - interrupted > INTERRUPT_GRACE_S:
                self.shutdown()
                return CellOutcome(Ended.TIMEOUT, seconds=now - start, restart=True)

    def _ended(self, content: dict, interrupted: bool, seconds: float) -> CellOutcome:
        """The outcome a shell reply reports."""
        ename, evalue = str(content.get("ename", "")), str(content.get("evalue", ""))
        if interrupted:
            return CellOutcome(Ended.TIMEOUT, ename, evalue, seconds)
        if content.get("status") == "ok":
            return CellOutcome(Ended.OK, seconds=seconds)
        if is_memory_error(ename, evalue):
            # a global may still hold the memory: then start afresh
            held = tree_rss_bytes(self.pid) > self.memory_limit // 2
            if held:
                self.shutdown()
            return CellOutcome(Ended.MEMORY, ename, evalue[:500], seconds, restart=held)
        return CellOutcome(Ended.ERROR, ename, evalue[:500], seconds)

    def shutdown(self) -> None:
        """Kill the kernel and everything it started; close the sockets."""
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.manager is not None:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
            self.manager = None
