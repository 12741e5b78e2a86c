"""Execute lab notebooks headless (nbclient), show where each run is, gather headline results.

A run shows one live bar over a lab's code cells on a terminal (the section being executed, the
elapsed time, the time the lab took last time on this machine) and one line per section in a log
without a terminal. Kernels listen on local IPC sockets (no TCP port, so no transport warning),
and their own stderr goes to a log beside the executed notebook.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import nbformat
import pandas as pd
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from tqdm.auto import tqdm
from traitlets.config import Config

from labkit.atomic import write_text_atomic
from labkit.config import run_dir
from labkit.report import collect_headlines

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # an output that needs a live kernel
SECTION = re.compile(r"^#{1,2}\s+(.+?)\s*$", re.MULTILINE)  # a notebook's title or a section
LAST_RUN = "last-run.json"  # beside a lab's runs: how long its last good run took
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class LabRun:
    """The outcome of executing one notebook."""

    lab: str
    status: str  # "ok", or what went wrong (section, cell and error for a failed cell)
    seconds: float
    results: dict[str, object] = field(default_factory=dict)
    executed: Path | None = None


def duration(seconds: float) -> str:
    """`seconds` as a person reads it: "42 s", "3 min 05 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def cell_sections(nb: nbformat.NotebookNode) -> list[str]:
    """For each cell of `nb`, the title of the section it is in: the last `#` or `##` heading of
    a markdown cell at or before it ("start" before any)."""
    current, titles = "start", []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            headings = SECTION.findall(cell.source)
            current = headings[-1] if headings else current
        titles.append(current)
    return titles


class CellProgress:
    """What one lab's run shows while it runs.

    `live=True` (a terminal): one tqdm bar over the code cells whose text names the section being
    executed and the last run's time. `live=False` (a log): one line per section as it starts,
    with the elapsed time. `started(i)` is called as cell `i` starts; `close()` at the end.
    """

    def __init__(
        self,
        lab: str,
        nb: nbformat.NotebookNode,
        *,
        live: bool,
        last_seconds: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.lab, self.live, self.stream = lab, live, stream or sys.stderr
        self.sections = cell_sections(nb)
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        self.position = {cell: k for k, cell in enumerate(code)}  # cell index -> code cells before
        self.last = f"last time {duration(last_seconds)}" if last_seconds else "first run here"
        self.section: str | None = None
        self.cell: int | None = None
        self.start = time.perf_counter()
        self.bar = (
            tqdm(total=len(code), desc=lab, unit="cell", file=self.stream, leave=True)
            if live
            else None
        )

    def started(self, cell_index: int) -> None:
        """Cell `cell_index` of the notebook starts executing (markdown cells are passed over)."""
        if cell_index not in self.position:
            return
        self.cell = cell_index
        section = self.sections[cell_index]
        if self.bar is not None:
            self.bar.n = self.position[cell_index]  # code cells done before this one
            self.bar.set_postfix_str(f"{section[:40]} | {self.last}", refresh=True)
        elif section != self.section:
            elapsed = duration(time.perf_counter() - self.start)
            print(f"  {self.lab} [{elapsed:>9}] {section}", file=self.stream, flush=True)
        self.section = section

    def close(self) -> None:
        if self.bar is not None:
            if self.cell is not None and self.position[self.cell] == len(self.position) - 1:
                self.bar.n = len(self.position)  # the last cell ran: the bar is full
            self.bar.close()


def _failure(nb: nbformat.NotebookNode, progress: CellProgress, error: Exception) -> str:
    """A failed run in one line: the section, the cell's first line, the error's last line."""
    last_line = ANSI.sub("", str(error)).strip().splitlines()[-1][:200]
    if progress.cell is None:
        return f"error: {last_line}"
    lines = [line for line in nb.cells[progress.cell].source.splitlines() if line.strip()]
    first = lines[0][:80] if lines else "(empty cell)"
    return f"error in section '{progress.sections[progress.cell]}', cell `{first}`: {last_line}"


def _ipc_config(folder: str) -> Config:
    """Kernel settings: connect over IPC sockets in `folder`, not over a TCP port."""
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(folder, "kernel")
    return config


def run_notebook(
    notebook: Path,
    out_dir: Path,
    *,
    profile: str | None = None,
    rehearse: bool = False,
    cell_timeout: int | None = None,
    kernel_name: str = "python3",
    live: bool = False,
    last_seconds: float | None = None,
    stream: TextIO | None = None,
) -> LabRun:
    """Execute `notebook` (outputs cleared first) and write it to `out_dir`; the original stays.

    `rehearse` sets `$LABKIT_REHEARSE` in the kernel (`labkit.labs.settings.rehearsing`).
    `cell_timeout` is in seconds per cell; None (the default) lets a long training cell run.
    `live`, `last_seconds` and `stream` shape the progress shown (see `CellProgress`). The
    kernel's own stderr and stdout go to `out_dir/<notebook stem>.kernel.log`.
    """
    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:  # stored outputs must never pass for this run's results
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env_profile = {"LABKIT_PROFILE": profile} if profile else {}
    env_profile["LABKIT_REHEARSE"] = "1" if rehearse else ""
    progress = CellProgress(notebook.stem, nb, live=live, last_seconds=last_seconds, stream=stream)
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="labkit-run-") as sockets,
        open(out_dir / f"{notebook.stem}.kernel.log", "wb") as log,
    ):
        client = NotebookClient(
            nb,
            timeout=cell_timeout,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(notebook.parent.resolve())}},
            config=_ipc_config(sockets),
            on_cell_start=lambda cell, cell_index: progress.started(cell_index),
        )
        try:
            client.execute(env={**os.environ, **env_profile}, stdout=log, stderr=log)
            status = "ok"
        except CellTimeoutError:
            status = f"time-out after {cell_timeout} s in a cell"  # only with a cell_timeout
        except CellExecutionError as error:
            status = _failure(nb, progress, error)
        finally:
            progress.close()
    seconds = time.perf_counter() - start
    executed = out_dir / notebook.name
    nbformat.write(nb, executed)
    return LabRun(notebook.stem, status, seconds, collect_headlines(nb), executed)


def last_run_seconds(lab: str, profile: str, runs: str | os.PathLike | None = None) -> float | None:
    """How long `lab` took in `profile` last time it ran without error here (None: never)."""
    path = run_dir(lab, profile, LAST_RUN, runs)
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_run(run: LabRun, profile: str, runs: str | os.PathLike | None = None) -> None:
    """Keep a good run's time beside the lab's runs, for the next run's progress line."""
    if run.status == "ok":
        path = run_dir(run.lab, profile, LAST_RUN, runs)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"seconds": round(run.seconds, 1)}) + "\n")


def summary_table(runs: list[LabRun], profile: str) -> pd.DataFrame:
    """One row per headline result of each run (a row "-" for a run without results)."""
    rows = [
        {
            "lab": r.lab,
            "profile": profile,
            "status": r.status,
            "seconds": round(r.seconds, 1),
            "result": k,
            "value": v,
        }
        for r in runs
        for k, v in (r.results.items() or [("-", "-")])
        if k != "profile"
    ]
    return pd.DataFrame(rows, columns=["lab", "profile", "status", "seconds", "result", "value"])


def write_summary(table: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """`summary.md` and `summary.csv` of a run's table in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv = out_dir / "summary.md", out_dir / "summary.csv"
    write_text_atomic(md, table.to_markdown(index=False) + "\n")
    write_text_atomic(csv, table.to_csv(index=False))
    return md, csv


def run_labs(
    notebooks: list[Path],
    out_dir: Path,
    profile: str,
    *,
    live: bool | None = None,
    after: Callable[[LabRun, Path], None] | None = None,
    stream: TextIO | None = None,
    rehearse: bool = False,
) -> list[LabRun]:
    """Run each notebook in turn (a failed one does not stop the others), remembering good
    runs' times; `after(run, notebook)` is called after each. `live` defaults to whether
    `stream` (stderr) is a terminal. `rehearse`: a rehearsal of `profile` (see `run_notebook`),
    its times kept apart from the profile's."""
    stream = stream or sys.stderr
    live = stream.isatty() if live is None else live
    kept = f"{profile}-rehearsal" if rehearse else profile
    what = f"a rehearsal of the {profile} profile" if rehearse else f"the {profile} profile"
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} in {what} ...", file=stream, flush=True)
        run = run_notebook(
            notebook,
            out_dir,
            profile=profile,
            rehearse=rehearse,
            live=live,
            last_seconds=last_run_seconds(notebook.stem, kept),
            stream=stream,
        )
        remember_run(run, kept)
        runs.append(run)
        if after is not None:
            after(run, notebook)
    return runs


def storable(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`nb` (changed in place) fit to be stored in `solutions/`: widget outputs removed.

    A widget output (a tqdm bar, the error browser) only shows in a live session; stored, a
    notebook opened before running shows it as text (`VBox(children=...`, a frozen bar). Cells'
    `execution` timing metadata (timestamps of the machine that ran them) are removed too.
    """
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb


def store_outputs(executed: Path, solutions: Path) -> None:
    """Write the executed notebook's outputs, made `storable`, over the solutions notebook."""
    nb = storable(nbformat.read(executed, as_version=4))
    write_text_atomic(solutions, nbformat.writes(nb) + "\n")
