"""Headline results, headless runs of a notebook, and the `labkit` command line."""

import io
import json
import tempfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from labkit.cli import main
from labkit.report import HEADLINE_MIME, collect_headlines, headline_table
from labkit.runner import (
    WIDGET_VIEW,
    CellProgress,
    cell_sections,
    last_run_seconds,
    run_labs,
    run_notebook,
)

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, cells: list) -> Path:
    """A notebook of `cells` for the python3 kernel, written at `path`."""
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _notebook(path: Path, *sources: str) -> Path:
    return _write(path, [nbformat.v4.new_code_cell(s) for s in sources])


def test_headline_table_and_collection() -> None:
    table = headline_table({"acc": 0.5, "data": "digits"})
    assert table.to_dict("list") == {"result": ["acc", "data"], "value": ["0.5", "digits"]}
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={HEADLINE_MIME: {"results": {"a": 1}}}),
        nbformat.v4.new_output("display_data", data={HEADLINE_MIME: {"results": {"b": 2}}}),
    ]
    nb.cells = [cell]
    assert collect_headlines(nb) == {"a": 1, "b": 2}


@pytest.mark.notebook
def test_run_notebook_collects_headlines_and_leaves_the_source(tmp_path: Path) -> None:
    source = _notebook(
        tmp_path / "solutions" / "02_demo.ipynb",
        "import os\nfrom labkit.report import show_headline",
        "show_headline('02_demo', {'profile': os.environ['LABKIT_PROFILE'], 'acc': 0.75})",
    )
    before = source.read_bytes()
    run = run_notebook(source, tmp_path / "out", profile="smoke")
    assert run.status == "ok"
    assert run.results == {"profile": "smoke", "acc": 0.75}
    assert run.executed == tmp_path / "out" / "02_demo.ipynb" and run.executed.is_file()
    assert source.read_bytes() == before


@pytest.mark.notebook
def test_run_notebook_reports_a_failing_cell_and_never_stale_results(tmp_path: Path) -> None:
    source = _notebook(
        tmp_path / "03_bad.ipynb",
        "raise KeyError('boom')",
        "from labkit.report import show_headline\nshow_headline('03', {'acc': 0.9})",
    )
    nb = nbformat.read(source, as_version=4)  # outputs of an earlier run, stored in the source
    nb.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={HEADLINE_MIME: {"results": {"acc": 0.9}}})
    ]
    nbformat.write(nb, source)
    run = run_notebook(source, tmp_path / "out")
    assert run.status.startswith("error") and "KeyError" in run.status
    assert run.results == {}


@pytest.mark.notebook
def test_cli_run_prints_the_results_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solutions = tmp_path / "solutions"
    _notebook(solutions / "02_demo.ipynb", "from labkit.report import show_headline")
    _notebook(solutions / "03_other.ipynb", "x = 1")
    argv = ["run", "02", "--solutions", str(solutions), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "02_demo" in out and "03_other" not in out and "status" in out


def test_cli_release_and_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    _notebook(solutions / "02_demo.ipynb", "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    dirs = ["--solutions", str(solutions), "--notebooks", str(notebooks)]
    assert main(["release", "--check", *dirs]) == 1
    assert main(["release", *dirs]) == 0
    assert main(["release", "--check", *dirs]) == 0
    assert "release check: ok" in capsys.readouterr().out
    assert "raise NotImplementedError()" in (notebooks / "02_demo.ipynb").read_text()


BAR = "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='bar'):\n    pass\nprint('printed')"


def test_run_store_keeps_smoke_outputs_without_widgets(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    solutions = tmp_path / "solutions"
    path = _notebook(solutions / "02_demo.ipynb", BAR, "import ipywidgets\nipywidgets.IntSlider()")
    out = ["--solutions", str(solutions), "--out", str(tmp_path / "out")]
    assert main(["run", "02", "--profile", "cpu", "--store", *out]) == 2
    assert "run it with --profile smoke" in capsys.readouterr().out
    assert main(["run", "02", "--profile", "smoke", "--store", *out]) == 0
    stored = nbformat.read(path, as_version=4)
    assert any("printed" in o.get("text", "") for o in stored.cells[0].outputs)
    for cell in stored.cells:
        assert "execution" not in cell.metadata
        for output in cell.outputs:
            assert WIDGET_VIEW not in output.get("data", {}), output
    executed = nbformat.read(tmp_path / "out" / "02_demo.ipynb", as_version=4)
    assert any(WIDGET_VIEW in o.get("data", {}) for o in executed.cells[1].outputs)


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")))
def test_stored_solutions_hold_no_widget_and_no_machine_path(path: Path) -> None:
    """Opened before running, a notebook shows its stored outputs: none may need a kernel."""
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = json.dumps(output)
            assert WIDGET_VIEW not in output.get("data", {}), (path.name, index)
            assert "VBox(children" not in text, (path.name, index)
            for machine_path in ("/tmp/", "/work/", "/home/", "/root/"):
                assert machine_path not in text, (path.name, index, machine_path)


def _sectioned(path: Path, second_section_code: str) -> Path:
    """A notebook of two sections, `## 1. Setup` and `## 2. Training`, one code cell each."""
    cells = [
        nbformat.v4.new_markdown_cell("# Lab 09: a demo"),
        nbformat.v4.new_markdown_cell("## 1. Setup"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Some prose.\n\n## 2. Training"),
        nbformat.v4.new_code_cell(second_section_code),
    ]
    return _write(path, cells)


def test_cell_sections_follow_the_headings() -> None:
    nb = nbformat.read(_sectioned(Path(tempfile.mkdtemp()) / "09_demo.ipynb", "y = 2"), 4)
    assert cell_sections(nb) == [
        "Lab 09: a demo",
        "1. Setup",
        "1. Setup",
        "2. Training",
        "2. Training",
    ]


def test_progress_in_a_log_is_one_line_per_section() -> None:
    nb = nbformat.read(_sectioned(Path(tempfile.mkdtemp()) / "09_demo.ipynb", "y = 2"), 4)
    stream = io.StringIO()
    progress = CellProgress("09_demo", nb, live=False, stream=stream)
    for index in (2, 4):
        progress.started(index)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["1. Setup", "2. Training"]
    assert all(line.startswith("  09_demo [") for line in lines)


def test_progress_on_a_terminal_names_the_section_and_the_last_time() -> None:
    nb = nbformat.read(_sectioned(Path(tempfile.mkdtemp()) / "09_demo.ipynb", "y = 2"), 4)
    stream = io.StringIO()
    progress = CellProgress("09_demo", nb, live=True, last_seconds=185, stream=stream)
    progress.started(4)
    progress.close()
    shown = stream.getvalue()
    assert "09_demo" in shown and "2. Training" in shown and "last time 3 min 05 s" in shown


@pytest.mark.notebook
def test_run_labs_names_the_failing_section_and_runs_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    bad = _sectioned(tmp_path / "solutions" / "08_bad.ipynb", "# train it\nraise KeyError('boom')")
    good = _sectioned(tmp_path / "solutions" / "09_good.ipynb", "y = 2")
    stream = io.StringIO()
    runs = run_labs([bad, good], tmp_path / "out", "smoke", live=False, stream=stream)
    assert runs[0].status == "error in section '2. Training', cell `# train it`: KeyError: 'boom'"
    assert runs[1].status == "ok"
    assert last_run_seconds("09_good", "smoke") == pytest.approx(runs[1].seconds, abs=0.1)
    assert last_run_seconds("08_bad", "smoke") is None  # only good runs are remembered
    log = (tmp_path / "out" / "09_good.kernel.log").read_text()
    assert "without encryption" not in log and "without encryption" not in stream.getvalue()
    lines = stream.getvalue().splitlines()
    assert "  08_bad [" in lines[1] and lines[1].endswith("1. Setup")


@pytest.mark.notebook
def test_cli_run_writes_the_summary_and_its_exit_code_says_whether_all_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    solutions = tmp_path / "solutions"
    _sectioned(solutions / "08_bad.ipynb", "raise KeyError('boom')")
    _sectioned(solutions / "09_good.ipynb", "y = 2")
    out = tmp_path / "out"
    assert main(["run", "--solutions", str(solutions), "--out", str(out)]) == 1
    assert main(["run", "09", "--solutions", str(solutions), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["lab"].tolist() == ["09_good"] and summary["status"].tolist() == ["ok"]
    assert "| 09_good" in (out / "summary.md").read_text()
    assert "summary: " in capsys.readouterr().out
