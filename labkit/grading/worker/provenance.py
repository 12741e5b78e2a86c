"""Whether an answer was written by the student: its recorded calls against the question's list.

Every question forbids calls into `labkit` (the package holds its own version of most ideas a
lab teaches) and calls that reach into the grader's recording or run code from a string
(`TAMPERING`). A question's hidden tests add the library callables that implement its idea and
may allow a few labkit names that an answer legitimately uses, in comment lines inside the
hidden-tests region, so the released notebook never points at where an answer could be found
(`labkit.grading.authoring.protocol.parse_call_lists` reads them):

    ### BEGIN HIDDEN TESTS
    # Forbidden calls: torchvision.ops.box_iou, torchvision.ops.generalized_box_iou
    # Allowed calls: labkit.data.birds.BirdSet.images_of
    ...
    ### END HIDDEN TESTS

A forbidden name is a function (forbids calling it), a class (forbids making and calling
instances, every method) or a module (forbids everything in it). Names are resolved in the
worker to the names the kernel's recorder writes (`labkit.grading.kernel.recorder`'s
`callable_name`), so an alias, a re-export (`torchvision.ops.box_iou` is
`torchvision.ops.boxes.box_iou`) or a helper in another cell changes nothing.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from labkit.grading.authoring.protocol import Question
from labkit.grading.kernel import recorder
from labkit.grading.kernel.recorder import callable_name

ALWAYS_FORBIDDEN = ("labkit",)
# calls no answer needs: they switch the recording off, reach into the interpreter's frames and
# objects, or run code from a string; each scores nothing, with its reason
TAMPERING = {
    "sys.setprofile": "switches the grader's call recording off",
    "sys.settrace": "installs a tracer over the grader's call recording",
    "threading.setprofile": "switches the grader's call recording off",
    "threading.settrace": "installs a tracer over the grader's call recording",
    "sys._getframe": "reaches into the interpreter's frames",
    "inspect.currentframe": "reaches into the interpreter's frames",
    "inspect.stack": "reaches into the interpreter's frames",
    "gc.get_objects": "searches the interpreter's objects",
    "gc.get_referrers": "searches the interpreter's objects",
    "gc.get_referents": "searches the interpreter's objects",
    "builtins.exec": "runs code from a string, out of the recording's sight",
    "builtins.eval": "runs code from a string, out of the recording's sight",
    "builtins.compile": "compiles code from a string, out of the recording's sight",
    "ctypes": "reaches into the interpreter's memory",
}


@dataclass(frozen=True)
class Target:
    """A forbidden or allowed name as the recorder writes it: exact names and name prefixes."""

    shown: str  # as the list wrote it
    exact: frozenset[str]
    prefixes: tuple[str, ...]  # a recorded name starting with one of these matches

    def matches(self, recorded: str) -> bool:
        return recorded in self.exact or recorded.startswith(self.prefixes)


def _import(dotted: str) -> object:
    """The object a dotted name stands for: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def _full(cell: object) -> bool:
    """Whether a closure cell holds a value (reading an empty one raises ValueError)."""
    try:
        return cell.cell_contents is not _full  # type: ignore[attr-defined]
    except ValueError:
        return False


@lru_cache(maxsize=512)
def resolve(dotted: str) -> Target:
    """The names a listed callable, class or module is recorded under.

    A name that cannot be imported here still matches itself and everything below it, so a list
    that names an optional package keeps working where that package is missing.
    """
    try:
        obj = _import(dotted)
    except (ImportError, AttributeError):
        return Target(dotted, frozenset({dotted}), (dotted + ".",))
    if isinstance(obj, ModuleType):
        return Target(dotted, frozenset({obj.__name__, dotted}), (obj.__name__ + ".", dotted + "."))
    if isinstance(obj, type):
        modules = {obj.__module__} | {
            v.__globals__["__name__"]
            for v in vars(obj).values()
            if callable(v) and isinstance(getattr(v, "__globals__", None), dict)
        }
        names = {f"{m}.{obj.__qualname__}" for m in modules} | {dotted}
        return Target(dotted, frozenset(names), tuple(sorted(f"{n}." for n in names)))
    names = {dotted, callable_name(obj)}
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None:
        names.add(callable_name(wrapped))
    if "<locals>" in callable_name(obj):  # a wrapper: recorded as what it closes over
        cells = [c.cell_contents for c in getattr(obj, "__closure__", None) or () if _full(c)]
        inner = {callable_name(f) for f in cells if callable(f)}
        if inner:
            names = {dotted} | inner
    return Target(dotted, frozenset(names), tuple(f"{n}.<locals>." for n in sorted(names)))


def judge_calls(
    record: dict | None, forbidden: Iterable[str] = (), allowed: Iterable[str] = ()
) -> str:
    """Why the recorded calls cost the question its points ("" when they do not).

    `record` is what the kernel's `Recorder.stop` returned (None: nothing was recorded, as when
    the recording could not be read back).
    """
    if not record or not isinstance(record.get("calls"), list):
        return "the grader could not read which functions your answer called; regrade it"
    calls = [c for c in record["calls"] if isinstance(c, str)]
    for name, why in TAMPERING.items():
        target = resolve(name)
        hit = next((c for c in calls if target.matches(c) or c == name), None)
        if hit:
            return f"your code calls {hit}, which {why}; an answer needs no such call"
    if not record.get("intact", False):
        return "your code switched off the grader's record of the functions it calls"
    if record.get("overflow"):
        return "your code called too many different functions for the grader to record"
    allow = [resolve(n) for n in allowed]
    for dotted in (*ALWAYS_FORBIDDEN, *forbidden):
        target = resolve(dotted)
        for call in calls:
            if target.matches(call) and not any(a.matches(call) for a in allow):
                what = "labkit's own code" if dotted == "labkit" else dotted
                return (
                    f"your answer calls {call} ({what}), which already implements what this "
                    "question asks you to write: write it yourself with ordinary torch "
                    "operations"
                )
    return ""


# The kernel side, run in the student's kernel from its source (like `kernel.encoder`).
_RECORDER_SOURCE = Path(recorder.__file__).read_text(encoding="utf-8")
MAX_RECORD_BYTES = 4 * 2**20


def _in_kernel(body: str) -> str:
    """One expression that runs `body` and displays nothing; `body` reads `b` (builtins), `sys`
    and `json`, never a global a student may have shadowed."""
    modules = "__import__('builtins'), __import__('sys'), __import__('json')"
    return f"(lambda b, sys, json: ({body}, None)[1])({modules})\n"


def install_code(token: str, student_sources: Iterable[str]) -> str:
    """Code that installs a recorder in a kernel under `sys.modules[token]` and marks the cells
    with `student_sources` as the student's code; it leaves the kernel's globals as they were."""
    body = (
        f"(lambda ns: (b.exec(b.compile({_RECORDER_SOURCE!r}, 'labkit/grading/kernel/recorder.py', "
        f"'exec'), ns), sys.modules.__setitem__({token!r}, "
        f"__import__('types').ModuleType({token!r})), "
        f"setattr(sys.modules[{token!r}], 'recorder', ns['Recorder'](ns['ipython_cell_file'])), "
        f"sys.modules[{token!r}].recorder.add_student_cells({list(student_sources)!r})))"
        "({'__name__': 'labkit_recorder'})"
    )
    return _in_kernel(body)


def stop_code(token: str) -> str:
    """Code that stops a recording whose question was graded without it (its cell failed)."""
    return _in_kernel(f"sys.modules[{token!r}].recorder.stop()")


def start_code(token: str) -> str:
    """Code that starts a recording."""
    return _in_kernel(f"sys.modules[{token!r}].recorder.start()")


def bound_names(source: str) -> list[str]:
    """The names a cell binds at its top level (assignments, definitions, imports); [] when it
    does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def read_names(sources: Iterable[str]) -> set[str]:
    """The names some of `sources` read (loaded names; a source that does not parse adds none)."""
    names: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return names


def handed_over(answer_sources: Iterable[str], question: Question) -> list[str]:
    """The names an answer binds that its probe or checks read: what the lab's code will call."""
    read = read_names(question.probe) | set(question.names)
    return [n for source in answer_sources for n in bound_names(source) if n in read]


def dump_code(
    token: str, path: str | os.PathLike, stop: bool = True, bound: Iterable[str] = ()
) -> str:
    """Code that notes what the answer's names `bound` hold, then writes the recording so far
    to `path` as JSON, stopping it unless `stop` is False (another question's answer is still
    being recorded)."""
    action = "stop" if stop else "peek"
    recorder_ = f"sys.modules[{token!r}].recorder"
    namespace = "__import__('IPython').get_ipython().user_ns"
    note = f"{recorder_}.note_bound({namespace}, {list(bound)!r})"
    write = f"b.open({str(path)!r}, 'w', encoding='utf-8').write(json.dumps(rec))"
    return _in_kernel(f"({note}, (lambda rec: {write})({recorder_}.{action}()))")


def read_record(path: str | os.PathLike) -> dict | None:
    """The recording a kernel wrote, or None when it is missing, too large or malformed."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("calls"), list):
        return None
    return data
