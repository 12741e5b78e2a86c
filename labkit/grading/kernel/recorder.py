"""Which functions a student's own code calls: the kernel side of the grader's call recording.

While a question's answer and probe run, a profile hook (`sys.setprofile`) notes every function
that a frame of the student's own code calls: code compiled from the student's cells (answer
cells, cells the student added or changed), whatever name or alias it was reached by. A call
to a decorator's wrapper (a function defined inside another, `<locals>` in its name) is noted
as a call to the callables it closes over (the function it wraps). Calls between the student's
own functions are not noted; what those functions call is. The grader compares the names with
the question's forbidden list (`labkit.grading.worker.provenance`).

This module imports nothing from labkit and runs in the student's kernel from its source, like
`labkit.grading.kernel.encoder`; the grader imports it for `callable_name`, the one naming rule both
sides use. It keeps the real `sys.setprofile`, `sys.getprofile` and `threading.setprofile` from
the moment it is installed, before any student code runs, so an answer that replaces them later
changes nothing, and one that switches the hook off is seen when the recording stops.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

MAX_CALLS = 10_000  # distinct names kept per recording: past it, `overflow` is set


def code_name(code: Any, module: str) -> str:
    """`module.qualname` of a Python code object (`co_qualname`, else `co_name` before 3.11)."""
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


_OWNERS: dict[int, str] = {}  # id of a module-less C function -> the module that holds it


def _owning_module(obj: Any) -> str:
    """The shortest name of a loaded module that holds `obj` under its own name ("" if none)."""
    key = id(obj)
    if key not in _OWNERS:
        name = getattr(obj, "__name__", "")
        holders = [
            m
            for m, module in list(sys.modules.items())
            if module is not None and getattr(module, name, None) is obj
        ]
        _OWNERS[key] = min(holders, key=len, default="")
    return _OWNERS[key]


def _is_function(value: Any) -> bool:
    """A function, method or builtin (not a callable instance such as a model: an instance the
    student's code made was recorded when it was made)."""
    return isinstance(
        value,
        (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType),
    ) or type(value).__name__ in (
        "method_descriptor",
        "wrapper_descriptor",
        "cython_function_or_method",
    )


def callable_name(obj: Any) -> str:
    """The name both sides give a callable: `module.qualname` (its code's for Python functions).

    A bound builtin method without a module (`tensor.sum`) takes its object's type's module
    (`torch.Tensor.sum`); a C function of an extension module without one, that module's name
    (`cv2.connectedComponents`).
    """
    code = getattr(obj, "__code__", None)
    if code is not None and isinstance(getattr(obj, "__globals__", None), dict):
        return code_name(code, str(obj.__globals__.get("__name__", "?")))
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    qualname = qualname or type(obj).__qualname__
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, types.ModuleType):
            module = owner.__name__
        elif owner is not None:
            module = type(owner).__module__
        else:  # a C function of an extension that names no module (cv2's)
            module = _owning_module(obj) or type(obj).__module__
    return f"{module}.{qualname}"


class Recorder:
    """Records what the student's code calls, between `start()` and `stop()`.

    `cell_file(source)` names the file a cell's code is compiled under (IPython's compiler);
    `add_student_cells` marks those files as the student's. In-process tests pass the filenames
    they compile with to `add_student_files` instead.
    """

    def __init__(self, cell_file: Callable[[str], str] | None = None) -> None:
        self._setprofile, self._getprofile = sys.setprofile, sys.getprofile
        self._thread_setprofile = threading.setprofile
        self._cell_file = cell_file
        self.student_files: set[str] = set()
        self.calls: set[str] = set()
        self.overflow = False
        self.recording = False
        self._profile = self._hook  # one bound method, so `getprofile() is` can recognise it

    def add_student_files(self, files: Iterable[str]) -> None:
        self.student_files.update(files)

    def add_student_cells(self, sources: Iterable[str]) -> None:
        if self._cell_file is None:
            raise RuntimeError("this recorder was made without a cell_file function")
        self.student_files.update(self._cell_file(source) for source in sources)

    def _note(self, name: str) -> None:
        if len(self.calls) < MAX_CALLS:
            self.calls.add(name)
        else:
            self.overflow = True

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        files = self.student_files
        if event == "call":
            code, caller = frame.f_code, frame.f_back
            if (
                caller is None
                or code.co_filename in files
                or caller.f_code.co_filename not in files
            ):
                return
            name = code_name(code, str(frame.f_globals.get("__name__", "?")))
            if "<locals>" in name and code.co_freevars:  # a wrapper: note what it wraps
                local = frame.f_locals
                wrapped = [local[v] for v in code.co_freevars if callable(local.get(v))]
                for function in wrapped:
                    self._note(callable_name(function))
                if wrapped:
                    return
            self._note(name)
            if code.co_name in ("__call__", "_wrapped_call_impl", "_call_impl"):
                owner = frame.f_locals.get("self")  # an instance called: name its class too
                if owner is not None:
                    kind = type(owner)
                    self._note(f"{kind.__module__}.{kind.__qualname__}.__call__")
        elif event == "c_call" and frame.f_code.co_filename in files:
            try:
                self._note(callable_name(arg))
            except Exception:  # an object whose names raise: still seen as called
                self._note(f"{type(arg).__module__}.{type(arg).__qualname__}")

    def _students(self, function: Any) -> bool:
        code = getattr(function, "__code__", None)
        return code is not None and code.co_filename in self.student_files

    def note_bound(self, namespace: dict, names: Iterable[str]) -> None:
        """Note what `names` are bound to in `namespace` where the student's code did not write
        it: an answer `iou = box_iou` hands the probe torchvision's function, which the probe
        then calls from the lab's own code; a class notes every base class it inherits from.
        Other objects (a model the answer built) are left: making them was recorded."""
        for name in names:
            value = namespace.get(name)
            while isinstance(value, functools.partial):
                value = value.func
            if isinstance(value, type):
                for base in value.__mro__[:-1]:  # object left out
                    if not any(self._students(v) for v in vars(base).values()):
                        self._note(f"{base.__module__}.{base.__qualname__}")
            elif _is_function(value) and not self._students(value):
                self._note(callable_name(value))
                if "<locals>" in callable_name(value):  # a wrapper: what it closes over too
                    for cell in getattr(value, "__closure__", None) or ():
                        try:
                            inner = cell.cell_contents
                        except ValueError:  # an empty cell
                            continue
                        if callable(inner):
                            self._note(callable_name(inner))

    def start(self) -> None:
        """Forget earlier calls and record from now on (this thread and threads started later)."""
        self.calls, self.overflow, self.recording = set(), False, True
        self._thread_setprofile(self._profile)
        self._setprofile(self._profile)

    def peek(self) -> dict:
        """The recording so far, going on: `{"calls": sorted names, "intact": hook still in
        place, "overflow": names were dropped}`."""
        intact = self.recording and self._getprofile() is self._profile
        return {"calls": sorted(self.calls), "intact": bool(intact), "overflow": self.overflow}

    def stop(self) -> dict:
        """Stop recording; the recording as `peek` gives it."""
        record = self.peek()
        self._setprofile(None)
        self._thread_setprofile(None)
        self.recording = False
        return record


def ipython_cell_file(source: str) -> str:
    """The filename IPython compiles a cell's `source` under in this kernel (ipykernel's rule
    depends on the source alone)."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell.compile.get_code_name(source, shell.transform_cell(source), 0)
