"""Headline results: a table in a lab, collected from executed notebooks by `labkit run`."""

from __future__ import annotations

from collections.abc import Mapping

import nbformat
import pandas as pd

HEADLINE_MIME = "application/vnd.labkit.headline+json"


def headline_table(results: Mapping[str, object]) -> pd.DataFrame:
    """A two-column table (result, value) of a lab's headline results."""
    return pd.DataFrame({"result": list(results), "value": [str(v) for v in results.values()]})


def show_headline(lab: str, results: Mapping[str, object]) -> None:
    """Display a lab's headline results as a table, tagged so `labkit run` can collect them."""
    from IPython.display import display

    table = headline_table(results)
    bundle = {
        HEADLINE_MIME: {"lab": lab, "results": {k: _plain(v) for k, v in results.items()}},
        "text/html": table.to_html(index=False),
        "text/plain": table.to_string(index=False),
    }
    display(bundle, raw=True)


def _plain(value: object) -> object:
    """A JSON-friendly version of a number or string."""
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def collect_headlines(nb: nbformat.NotebookNode) -> dict[str, object]:
    """Every headline result displayed in an executed notebook, merged in cell order."""
    results: dict[str, object] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if HEADLINE_MIME in data:
                results.update(data[HEADLINE_MIME]["results"])
    return results
