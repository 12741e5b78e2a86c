"""The package's layout as docs/ARCHITECTURE.md draws it, read from the source (no import runs).

Layers, lowest first; a module imports only from its own layer or below, and module-level
imports never form a circle:
  0 `config`, `atomic`: what everything shares;
  1 `training`, `data`, `models`: infrastructure;
  2 the topic wings (`vgg`, `triplets`, `bilinear`, `attention`), shared figures (`plots`) and
    headline tables (`report`);
  3 `labs`, the lab layer (no lab module imports another);
  4 `grading`;
  5 `cli`, `runner`: the tools.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labkit"
LAYERS = {
    "config": 0,
    "atomic": 0,
    "training": 1,
    "data": 1,
    "models": 1,
    "vgg": 2,
    "triplets": 2,
    "bilinear": 2,
    "attention": 2,
    "plots": 2,
    "report": 2,
    "labs": 3,
    "grading": 4,
    "cli": 5,
    "runner": 5,
}
LAB_MODULES = {"vgg_receptive_fields", "densenet_resnext", "facenet_knn", "bcnn_hbp", "opam"}
MAX_TOP_LEVEL = 8
MAX_PER_FOLDER = 12
MAX_LINES = 450
MAX_FIT_LINES = 60


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (the student kit's template aside)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "kit_template" in parts:
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The labkit modules `name` imports (the longest dotted prefix that is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    targets: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets.update(f"{base}.{alias.name}" for alias in node.names)
            targets.add(base)
    resolved = set()
    for target in targets:
        parts = target.split(".")
        while parts and ".".join(parts) not in MODULES:
            parts.pop()
        if parts and ".".join(parts) != name:
            resolved.add(".".join(parts))
    return resolved


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_room_has_a_layer() -> None:
    rooms = {name.split(".")[1] for name in MODULES if "." in name}
    assert rooms <= set(LAYERS), f"give these a layer in {__file__}: {rooms - set(LAYERS)}"


def test_at_most_eight_modules_at_the_top_level() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize(
    "folder",
    sorted({p.parent for p in MODULES.values()}),
    ids=lambda p: str(p.relative_to(PACKAGE.parent)),
)
def test_no_folder_holds_more_than_twelve_modules(folder: Path) -> None:
    modules = sorted(p.name for p in folder.glob("*.py"))
    assert len(modules) <= MAX_PER_FOLDER, modules


def test_no_file_is_over_450_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_imports_only_point_down() -> None:
    upward = []
    for name, path in MODULES.items():
        mine = _layer(name)
        for target in _imports(name, path, top_level_only=False):
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_no_lab_module_imports_another() -> None:
    crossing = []
    for lab in LAB_MODULES:
        name = f"labkit.labs.{lab}"
        if name not in MODULES:
            continue
        for target in _imports(name, MODULES[name], top_level_only=False):
            if target.rsplit(".", 1)[-1] in LAB_MODULES and target.startswith("labkit.labs."):
                crossing.append(f"{name} -> {target}")
    assert not crossing, crossing


def test_module_level_imports_form_no_circle() -> None:
    graph = {name: _imports(name, path, top_level_only=True) for name, path in MODULES.items()}
    # a package's __init__ importing its own submodules is how a package exports names
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(f"{name}.")}
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            cycle = trail[trail.index(node) :] + [node]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, [*trail, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_fit_fits_on_a_screen() -> None:
    found = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "fit":
                found.append((path, node.end_lineno - node.lineno + 1))
    training = [(p, n) for p, n in found if "training" in p.parts]
    assert training, "no fit in labkit/training"
    assert all(n <= MAX_FIT_LINES for _, n in training), training
