"""The sandbox a student's kernel runs in: bubblewrap (`bwrap`), where the machine has it.

Inside, the kernel sees a read-only system (/usr, a few files of /etc, the Python installation,
the labkit package, the data folder), an empty tmpfs over everything else, and its own scratch
folder, writable, at the path it has outside. It has no network (a network namespace of its
own, loopback only), its own PID namespace (whatever it starts dies with it), no capabilities,
and it dies with the grading worker. So student code cannot read the solutions, another
student's scratch copy or the grader's files, reach the network, or leave a process behind.

Where bwrap is missing or cannot make namespaces (macOS, a container without user namespaces),
`find_sandbox` says why and the grader runs kernels unsandboxed, and says so: see
docs/GRADING.md for what that exposes.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

MODES = ("auto", "bwrap", "none")
# Files of /etc that programs read while starting; nothing else of /etc is visible.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "alternatives",
    "fonts",
    "mime.types",
)


class SandboxError(RuntimeError):
    """The sandbox was asked for and cannot be used here (the message says why)."""


@dataclass(frozen=True)
class Sandbox:
    """How kernels are isolated: `name` says what, `reason` why nothing (when name is "none")."""

    name: str
    executable: str = ""
    reason: str = ""

    @property
    def active(self) -> bool:
        return bool(self.executable)

    @property
    def label(self) -> str:
        """What the gradebook shows in its sandbox column."""
        return self.name if self.active else f"none: {self.reason}"

    def argv(
        self,
        scratch: Path,
        readable: Iterable[Path],
        hidden: Iterable[Path] = (),
        workdir: Path | None = None,
    ) -> tuple[str, ...]:
        """The command that runs a program in the sandbox: put it before the program's argv.

        The program starts in `workdir` (default `scratch`), which must lie inside `scratch`.
        `scratch` is bound writable; each of `readable` read-only, unless it holds one of
        `hidden` (the solutions, the submissions, the grader's own folder): such a folder is
        left out, so a checkout that keeps its virtual environment next to `solutions/` shares
        only what the kernel needs.
        """
        if not self.active:
            return ()
        hidden = [Path(h).resolve() for h in hidden]
        argv = [self.executable, "--unshare-all", "--die-with-parent", "--new-session"]
        argv += ["--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64"):
            path = Path("/") / name
            if path.is_symlink():
                argv += ["--symlink", str(path.readlink()), str(path)]
            elif path.is_dir():
                argv += ["--ro-bind", str(path), str(path)]
        for name in ETC_FILES:
            argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        allowed = [Path(p).resolve() for p in readable]
        allowed = [p for p in allowed if not any(h.is_relative_to(p) for h in hidden)]
        for path in _outermost(allowed):
            if path.exists():
                argv += ["--ro-bind", str(path), str(path)]
        scratch = Path(scratch).resolve()
        workdir = Path(workdir).resolve() if workdir is not None else scratch
        if not workdir.is_relative_to(scratch):
            raise ValueError(f"the working folder {workdir} is not inside {scratch}")
        argv += ["--bind", str(scratch), str(scratch), "--chdir", str(workdir), "--"]
        return tuple(argv)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths that lie inside none of the others (binding those covers the rest)."""
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


@functools.cache
def _bwrap_works(executable: str) -> str:
    """ "" when `executable` can make a sandbox here, else why not."""
    probe = Sandbox("bwrap", executable).argv(Path("/tmp"), [Path(sys.prefix)])
    try:
        done = subprocess.run(
            [*probe, "/bin/true"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{executable} did not run ({error})"
    if done.returncode != 0:
        return f"{executable} cannot make namespaces here: {done.stderr.decode()[:200].strip()}"
    return ""


def find_sandbox(mode: str = "auto") -> Sandbox:
    """The sandbox for `mode`: "bwrap" (SandboxError when unusable), "none", or "auto" (bwrap
    when it works here, else none with the reason)."""
    if mode not in MODES:
        raise ValueError(f"sandbox {mode!r} is not one of {', '.join(MODES)}")
    if mode == "none":
        return Sandbox("none", reason="turned off (--sandbox none)")
    executable = shutil.which("bwrap")
    why = (
        _bwrap_works(executable)
        if executable
        else "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    )
    if not why:
        return Sandbox("bwrap", executable)
    if mode == "bwrap":
        raise SandboxError(f"the bwrap sandbox cannot be used: {why}")
    return Sandbox("none", reason=why)


def python_paths() -> list[Path]:
    """Where this Python's installation and packages live (read-only in the sandbox)."""
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    # package folders only: a script's folder or a checkout on sys.path may hold solutions
    found += [
        Path(p)
        for p in sys.path
        if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
    ]
    return found


def readable_paths(extra: Sequence[Path]) -> list[Path]:
    """Python's paths and `extra` (the labkit package, the data folder), existing ones only."""
    return [p for p in [*python_paths(), *extra] if p.exists()]
