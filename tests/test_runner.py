"""Headline results, headless runs of a notebook, and the `labkit` command line."""

import json
from pathlib import Path

import nbformat
import pytest

from labkit.cli import main
from labkit.report import HEADLINE_MIME, collect_headlines, headline_table
from labkit.runner import WIDGET_VIEW, run_notebook

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


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
