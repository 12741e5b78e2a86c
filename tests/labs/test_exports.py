"""Each lab module exports exactly what its notebook takes from labkit: `__all__` is the set of
names the solution notebook imports from labkit or reads off its lab module (the grader's own
imports in hidden test cells aside), and every one of them is there."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"
LABS = {
    "01_vgg_receptive_fields": "vgg_receptive_fields",
    "02_densenet_resnext": "densenet_resnext",
    "03_facenet_knn": "facenet_knn",
    "04_bcnn_hbp": "bcnn_hbp",
    "05_opam": "opam",
}


def _used_names(notebook: Path, module: str) -> set[str]:
    """Names the notebook's code cells import from labkit, or read as `<alias>.name` off the
    lab module (or off `labkit` itself)."""
    aliases, names = {"labkit"}, set()
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
                if node.module.startswith("labkit.grading"):
                    continue  # the grader's reference weights, in hidden test cells
                for alias in node.names:
                    if node.module == "labkit.labs" and alias.name == module:
                        aliases.add(alias.asname or alias.name)
                    elif node.module != "labkit.labs":
                        names.add(alias.name)
        for node in ast.walk(tree):
            value = node.value if isinstance(node, ast.Attribute) else None
            if isinstance(value, ast.Name) and value.id in aliases:
                names.add(node.attr)
    return names


@pytest.mark.parametrize("lab", sorted(LABS))
def test_a_lab_module_exports_exactly_what_its_notebook_uses(lab: str) -> None:
    module = importlib.import_module(f"labkit.labs.{LABS[lab]}")
    used = _used_names(SOLUTIONS / f"{lab}.ipynb", LABS[lab])
    assert set(module.__all__) == used, (
        f"in the notebook, not exported: {sorted(used - set(module.__all__))}; "
        f"exported, not used: {sorted(set(module.__all__) - used)}"
    )
    assert all(hasattr(module, name) for name in module.__all__)
    assert len(module.__all__) == len(set(module.__all__))
