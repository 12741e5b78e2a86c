"""Execute lab notebooks headless (nbclient) and gather their headline results."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from labkit.atomic import write_text_atomic
from labkit.report import collect_headlines

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # an output that needs a live kernel


@dataclass
class LabRun:
    """The outcome of executing one notebook."""

    lab: str
    status: str  # "ok", or what went wrong
    seconds: float
    results: dict[str, object] = field(default_factory=dict)
    executed: Path | None = None


def run_notebook(
    notebook: Path,
    out_dir: Path,
    *,
    profile: str | None = None,
    cell_timeout: int | None = None,
    kernel_name: str = "python3",
) -> LabRun:
    """Execute `notebook` (outputs cleared first) and write it to `out_dir`; the original stays.

    `cell_timeout` is in seconds per cell; None (the default) lets a long training cell run.
    """
    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:  # stored outputs must never pass for this run's results
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env_profile = {"LABKIT_PROFILE": profile} if profile else {}
    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(notebook.parent.resolve())}},
    )
    start = time.perf_counter()
    try:
        client.execute(env={**os.environ, **env_profile})
        status = "ok"
    except CellTimeoutError:
        status = f"time-out after {cell_timeout} s in a cell"  # only with a cell_timeout
    except CellExecutionError as error:
        last_line = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()[-1]
        status = f"error: {last_line[:200]}"
    seconds = time.perf_counter() - start
    executed = out_dir / notebook.name
    nbformat.write(nb, executed)
    return LabRun(notebook.stem, status, seconds, collect_headlines(nb), executed)


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
