"""Grade a folder of submissions into a gradebook, feedback and a sheet of free-text answers.

`grade_folder` is the API (it returns a `GradingRun` and prints nothing; `labkit grade` prints).
Each submission runs in a kernel of its own, in a scratch copy of its working folder, under a
per-cell time-out, a total time-out and a memory limit, driven by a worker process
(`labkit.grading.worker`). The answers' values are exported from the kernel as data and the
solutions' checks run on them in the worker, which the student's code never ran in. Every file
of the submissions folder is read into memory first and verified afterwards: a file that a
student's code changed or deleted is restored byte for byte, and the gradebook says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from labkit.atomic import write_bytes_atomic, write_text_atomic
from labkit.config import data_root
from labkit.grading.protocol import (
    LabSpec,
    answer_text,
    locate,
    nbgrader_meta,
    parse_solutions,
)
from labkit.grading.worker import WorkerProcess, python_path

GRACE_S = 120.0  # past the total time-out, how long a worker may take to wrap up before the kill
MAX_NOTES = 20  # errors of a student's own cells listed in the feedback


# ---------------------------------------------------------------- results


@dataclass
class QuestionResult:
    """One question of one submission."""

    question: str
    points: float | None  # None: marked by hand and not marked yet
    max_points: float
    message: str = ""  # why points were lost ("" when full marks)
    manual: bool = False
    comment: str = ""  # the hand marker's comment


@dataclass
class SubmissionResult:
    """One student's grade: status, points per question, free-text answers, notes."""

    student: str
    path: str  # the file or folder handed in
    status: str
    questions: list[QuestionResult]
    answers: dict[str, str] = field(default_factory=dict)  # hand-marked question -> answer
    notes: list[str] = field(default_factory=list)
    notebook: str = ""  # the notebook graded, relative to `path`'s folder
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(q.points or 0.0 for q in self.questions)

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions)

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        questions = [QuestionResult(**q) for q in data["questions"]]
        return cls(**{**data, "questions": questions})


def _status(parts: list[str]) -> str:
    parts = list(dict.fromkeys(p for p in parts if p))
    return "; ".join(parts) if parts else "ok"


def _ungraded(spec: LabSpec, status: str) -> list[QuestionResult]:
    return [QuestionResult(q.grade_id, 0.0, q.points, status, q.manual) for q in spec.questions]


# ---------------------------------------------------------------- files in, files out


@dataclass
class _Original:
    """One file handed in, as it was: restored from here if a student's code touches it."""

    path: Path
    data: bytes
    mode: int
    mtime_ns: int
    owner: str
    owner_note: str = ""

    def intact(self) -> bool:
        try:
            return self.path.is_file() and self.path.read_bytes() == self.data
        except OSError:
            return False

    def restore(self) -> None:
        if self.path.is_dir() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        write_bytes_atomic(self.path, self.data)
        os.chmod(self.path, self.mode & 0o7777)
        os.utime(self.path, ns=(self.mtime_ns, self.mtime_ns))


@dataclass
class _Entry:
    """One student: a file or a folder of the submissions folder, with its bytes in memory."""

    student: str
    path: Path
    files: dict[Path, bytes]  # relative to the working folder (the file's own name for a file)


def _read_entries(items: list[Path]) -> tuple[list[_Entry], list[_Original]]:
    """Each item (a file or a folder) as one student (file stem or folder name), in memory."""
    stems = [p.stem if p.is_file() else p.name for p in items]
    entries, originals = [], []
    for item, stem in zip(items, stems, strict=True):
        student = stem if stems.count(stem) == 1 else item.name
        files: dict[Path, bytes] = {}
        paths = [item] if not item.is_dir() else sorted(p for p in item.rglob("*") if p.is_file())
        for path in paths:
            try:
                data, stat = path.read_bytes(), path.stat()
            except OSError:
                continue  # unreadable (a dangling link): its student's status will say so
            rel = Path(path.name) if path == item else path.relative_to(item)
            files[rel] = data
            originals.append(_Original(path, data, stat.st_mode, stat.st_mtime_ns, student))
        entries.append(_Entry(student, item, files))
    return entries, originals


def _pick_notebook(entry: _Entry, spec: LabSpec, solutions_name: str) -> tuple[Path | None, str]:
    """The notebook of a folder submission (same name as the solutions', else the lab's, else
    the first), with a note when there was a choice."""
    candidates = sorted(
        (
            p
            for p in entry.files
            if p.suffix == ".ipynb" and not any(part.startswith(".") for part in p.parts)
        ),
        key=lambda p: (len(p.parts), str(p)),
    )
    if not candidates:
        return None, ""

    def lab_of(path: Path) -> str | None:
        try:
            return json.loads(entry.files[path]).get("metadata", {}).get("labkit", {}).get("lab")
        except (ValueError, AttributeError):
            return None

    chosen = next((p for p in candidates if p.name == solutions_name), None)
    chosen = chosen or next((p for p in candidates if spec.lab and lab_of(p) == spec.lab), None)
    chosen = chosen or candidates[0]
    note = (
        f"{len(candidates)} notebooks in the folder; graded {chosen}" if len(candidates) > 1 else ""
    )
    return chosen, note


def _read_notebook(data: bytes, spec: LabSpec) -> tuple[str, dict | None]:
    """`(status, notebook)`: status "" when the notebook can be graded."""
    if not data.strip():
        return "empty", None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # invalid JSON, not nbformat, not UTF-8: any reason means the same
        return "not a notebook", None
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("source", ""), str) for c in cells
    ):
        return "not a notebook", None
    if not cells:
        return "empty", None
    meta = nb.get("metadata", {})
    lab = meta.get("labkit", {}).get("lab") if isinstance(meta.get("labkit"), dict) else None
    if spec.lab and lab and lab != spec.lab:
        return "another lab's notebook", nb
    located = locate(nb, spec)
    if not located.found_any:
        return ("another lab's notebook" if located.other_ids else "no question cells found"), nb
    return "", nb


# ---------------------------------------------------------------- one submission


@dataclass(frozen=True)
class GradeSettings:
    """How each submission runs."""

    cell_timeout: float = 600.0  # s per cell: a CPU training cell takes minutes (nbgrader's 30 s
    # broke training cells, #915)
    total_timeout: float = 3600.0  # s per submission, replays after a kernel restart included
    memory_limit: float = 6.0  # GiB of data segment per kernel (and per worker)
    profile: str = "smoke"  # LABKIT_PROFILE of the kernels
    run_all: bool = False  # also run the cells after the last answer cell (they change no grade)
    threads: int = 1  # OMP/MKL threads per kernel
    scratch: Path | None = None  # where the scratch folders go (default: the system's temp)
    keep_scratch: bool = False  # keep each scratch folder (to debug a submission)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_limit * 2**30)


def _kernel_env(scratch: Path, settings: GradeSettings) -> dict[str, str]:
    env = dict(os.environ)
    threads = str(settings.threads)
    env.update(
        LABKIT_PROFILE=settings.profile,
        LABKIT_RUNS=str(scratch / "runs"),  # no student resumes another's checkpoint
        LABKIT_DATA=str(data_root()),  # shared, read-only in spirit
        MPLBACKEND="Agg",
        IPYTHONDIR=str(scratch / "ipython"),  # history databases never shared between kernels
        PYTHONPATH=python_path(),
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def _grade_entry(
    spec: LabSpec,
    entry: _Entry,
    settings: GradeSettings,
    scratch_root: Path,
    solutions_name: str,
    worker: Callable[[], WorkerProcess],
) -> SubmissionResult:
    """Grade one student's entry (never raises for a bad submission)."""
    start = time.perf_counter()
    result = SubmissionResult(entry.student, str(entry.path), "", [])
    if entry.path.is_dir():
        chosen, note = _pick_notebook(entry, spec, solutions_name)
        result.notes += [note] if note else []
        if chosen is None:
            result.status = "no notebook in folder"
    elif entry.path.suffix != ".ipynb":
        chosen, result.status = None, "not a notebook"
    else:
        chosen = next(iter(entry.files), None)
        result.status = "" if chosen is not None else "not readable"
    nb = None
    if chosen is not None:
        result.notebook = str(chosen)
        result.status, nb = _read_notebook(entry.files[chosen], spec)
    if result.status:
        result.questions = _ungraded(spec, result.status)
        result.seconds = time.perf_counter() - start
        return result
    located = locate(nb, spec)
    result.notes += located.notes
    for question in spec.manual:
        index = located.answers[question.grade_id]
        result.answers[question.grade_id] = (
            answer_text(nb["cells"][index]) if index is not None else ""
        )
    scratch = Path(tempfile.mkdtemp(prefix=_slug(entry.student)[:20] + "-", dir=scratch_root))
    try:
        workdir = scratch / "work"
        for rel, data in entry.files.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_bytes(data)
        job = {
            "spec": spec.to_dict(),
            "notebook": _sources_only(nb),
            "scratch": str(scratch),
            "workdir": str((workdir / chosen).parent),
            "env": _kernel_env(scratch, settings),
            "cell_timeout": settings.cell_timeout,
            "total_timeout": settings.total_timeout,
            "memory_limit": settings.memory_bytes,
            "run_all": settings.run_all,
        }
        events, why = worker().grade(job, settings.total_timeout + GRACE_S)
    finally:
        if not settings.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    statuses = [e["text"] for e in events if e.get("event") == "status"] + [why]
    notes = [e["text"] for e in events if e.get("event") == "note"]
    result.notes += notes[:MAX_NOTES] + [f"... and {len(notes) - MAX_NOTES} more"] * (
        len(notes) > MAX_NOTES
    )
    graded = {e["id"]: e for e in events if e.get("event") == "question"}
    stopped = next((s for s in statuses if s), "")
    for question in spec.questions:
        if question.manual:
            result.questions.append(
                QuestionResult(question.grade_id, None, question.points, manual=True)
            )
        elif question.grade_id in graded:
            event = graded[question.grade_id]
            result.questions.append(
                QuestionResult(
                    question.grade_id, float(event["points"]), question.points, event["message"]
                )
            )
        else:
            reason = (
                f"the notebook ran past the total time-out of {settings.total_timeout:g} s"
                if "total time-out" in statuses
                else stopped or "the grader stopped"
            )
            result.questions.append(
                QuestionResult(question.grade_id, 0.0, question.points, f"not graded: {reason}")
            )
    result.status = _status(statuses)
    result.seconds = time.perf_counter() - start
    return result


def _sources_only(nb: dict) -> dict:
    """What a worker needs of a notebook: cell types, sources, grading metadata (no outputs)."""
    cells = [
        {
            "cell_type": c.get("cell_type"),
            "source": c.get("source", ""),
            "metadata": {"nbgrader": nbgrader_meta(c)} if nbgrader_meta(c) else {},
        }
        for c in nb.get("cells", [])
    ]
    return {"cells": cells, "metadata": {}}


def _slug(name: str) -> str:
    """A file-name-safe version of a student's name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


# ---------------------------------------------------------------- the run


@dataclass
class GradingRun:
    """Everything one `grade_folder` call found; tables are built from `results` on demand."""

    spec: LabSpec
    results: list[SubmissionResult]
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def gradebook(self) -> pd.DataFrame:
        """One row per student: status, points per question, total and maximum."""
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"student": r.student, "status": r.status}
            row.update(
                {q.question: (math.nan if q.points is None else q.points) for q in r.questions}
            )
            row.update(
                total=r.total, max_points=r.max_points, seconds=round(r.seconds, 1), file=r.path
            )
            rows.append(row)
        columns = [
            "student",
            "status",
            *self.spec.max_points,
            "total",
            "max_points",
            "seconds",
            "file",
        ]
        book = pd.DataFrame(rows, columns=columns)
        book.attrs["max_points"] = self.spec.max_points
        book.attrs["manual"] = [q.grade_id for q in self.spec.manual]
        return book

    @property
    def answers(self) -> pd.DataFrame:
        """Free-text answers side by side: one row per student, one column per question."""
        manual = [q.grade_id for q in self.spec.manual]
        rows = [
            {"student": r.student, **{q: r.answers.get(q, "") for q in manual}}
            for r in self.results
        ]
        return pd.DataFrame(rows, columns=["student", *manual])

    def result(self, student: str) -> SubmissionResult:
        return next(r for r in self.results if r.student == student)

    def feedback(self, student: str) -> str:
        """The Markdown feedback of one student: points, messages, never the hidden checks."""
        r = self.result(student)
        lab = self.spec.lab or Path(self.spec.source).stem
        pending = sum(q.max_points for q in r.questions if q.points is None)
        lines = [
            f"# {lab}: feedback for {r.student}",
            "",
            f"Status: {r.status}",
            "",
            f"Points: {r.total:g} / {r.max_points:g}"
            + (f" ({pending:g} still to be marked by hand)" if pending else ""),
            "",
        ]
        lines += ["| question | points | of |", "| --- | --- | --- |"]
        lines += [
            f"| {q.question} | {'-' if q.points is None else f'{q.points:g}'} | {q.max_points:g} |"
            for q in r.questions
        ]
        for q in r.questions:
            shown = "not marked yet" if q.points is None else f"{q.points:g}"
            lines += ["", f"## {q.question}: {shown} / {q.max_points:g}", ""]
            if q.manual:
                lines.append(
                    q.comment
                    or (
                        "Marked by hand."
                        if q.points is not None
                        else "Marked by hand; not marked yet."
                    )
                )
            else:
                lines.append(q.message or "All checks passed.")
        if r.notes:
            lines += ["", "## Notes", "", *[f"- {n}" for n in r.notes]]
        return "\n".join(lines) + "\n"

    def answers_markdown(self) -> str:
        """Every student's answer to each hand-marked question, one question after the other."""
        lines = [f"# {self.spec.lab or Path(self.spec.source).stem}: answers to mark by hand"]
        for q in self.spec.manual:
            lines += ["", f"## {q.grade_id} ({q.points:g} points)"]
            for r in self.results:
                text = r.answers.get(q.grade_id, "").strip() or "*(no answer)*"
                lines += ["", f"### {r.student}", "", *[f"> {line}" for line in text.split("\n")]]
        return "\n".join(lines) + "\n"

    def marks_template(self) -> pd.DataFrame:
        """Rows to fill in by hand: student, question, points (blank), max_points, comment."""
        rows = [
            {
                "student": r.student,
                "question": q.grade_id,
                "points": "",
                "max_points": q.points,
                "comment": "",
            }
            for q in self.spec.manual
            for r in self.results
        ]
        return pd.DataFrame(
            rows, columns=["student", "question", "points", "max_points", "comment"]
        )

    def merge_manual(self, marks: Path | str | pd.DataFrame) -> GradingRun:
        """Fill hand marks into the hand-marked questions (validated; see `read_manual_marks`)."""
        manual = {q.grade_id: q.points for q in self.spec.manual}
        found = read_manual_marks(marks, [r.student for r in self.results], manual)
        for (student, question), (points, comment) in found.items():
            q = next(q for q in self.result(student).questions if q.question == question)
            q.points, q.comment = points, comment
        return self

    def write(self, out_dir: Path) -> list[Path]:
        """Gradebook, results, feedback per student, answers sheet, marks template (atomic)."""
        out_dir = Path(out_dir)
        written = [
            write_text_atomic(out_dir / "gradebook.csv", self.gradebook.to_csv(index=False)),
            write_text_atomic(out_dir / "results.json", json.dumps(self.to_dict(), indent=1)),
            write_text_atomic(out_dir / "answers.csv", self.answers.to_csv(index=False)),
            write_text_atomic(out_dir / "answers.md", self.answers_markdown()),
        ]
        names = {r.student: _slug(r.student) for r in self.results}
        for student, slug in names.items():
            unique = (
                slug
                if list(names.values()).count(slug) == 1
                else f"{slug}-{hashlib.sha1(student.encode()).hexdigest()[:8]}"
            )
            written.append(
                write_text_atomic(out_dir / "feedback" / f"{unique}.md", self.feedback(student))
            )
        template = out_dir / "manual_marks.csv"
        if not template.exists():  # never overwrite marks an instructor has started
            written.append(write_text_atomic(template, self.marks_template().to_csv(index=False)))
        return written

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "results": [asdict(r) for r in self.results],
            "seconds": self.seconds,
            "warnings": self.warnings,
        }

    @classmethod
    def load(cls, out_dir: Path) -> GradingRun:
        """The run an earlier `write(out_dir)` saved (from its results.json)."""
        data = json.loads((Path(out_dir) / "results.json").read_text(encoding="utf-8"))
        return cls(
            LabSpec.from_dict(data["spec"]),
            [SubmissionResult.from_dict(r) for r in data["results"]],
            data.get("seconds", 0.0),
            data.get("warnings", []),
        )


def read_manual_marks(
    marks: Path | str | pd.DataFrame, students: list[str], max_points: Mapping[str, float]
) -> dict[tuple[str, str], tuple[float, str]]:
    """`{(student, question): (points, comment)}` from a marks table; blank points are skipped.

    A ValueError names the row (as numbered in the file, header = row 1) of an unknown student
    or question, points that are not a number, negative or above the question's maximum, or a
    (student, question) marked twice.
    """
    where = "marks" if isinstance(marks, pd.DataFrame) else str(marks)
    table = (
        marks
        if isinstance(marks, pd.DataFrame)
        else pd.read_csv(marks, dtype=str, keep_default_na=False)
    )
    missing = {"student", "question", "points"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{where}: columns {sorted(missing)} are missing; start from "
            "manual_marks.csv written by `labkit grade`"
        )
    found: dict[tuple[str, str], tuple[float, str]] = {}
    for number, row in enumerate(table.to_dict("records"), start=2):
        student, question = str(row["student"]).strip(), str(row["question"]).strip()
        text = "" if pd.isna(row["points"]) else str(row["points"]).strip()
        if not text:
            continue
        if student not in students:
            raise ValueError(f"{where}, row {number}: unknown student {student!r}")
        if question not in max_points:
            raise ValueError(
                f"{where}, row {number}: unknown question {question!r}; hand-marked "
                f"questions: {', '.join(max_points) or 'none'}"
            )
        try:
            points = float(text)
        except ValueError:
            raise ValueError(f"{where}, row {number}: points {text!r} is not a number") from None
        if not 0 <= points <= max_points[question]:
            raise ValueError(
                f"{where}, row {number}: {points:g} points for {question} is outside "
                f"0..{max_points[question]:g}"
            )
        if (student, question) in found:
            raise ValueError(f"{where}, row {number}: {student} / {question} is marked twice")
        comment = row.get("comment", "")
        found[(student, question)] = (points, "" if pd.isna(comment) else str(comment).strip())
    return found


def merge_manual_marks(
    gradebook: pd.DataFrame,
    marks: Path | str | pd.DataFrame,
    max_points: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """A copy of `gradebook` with hand marks filled in and totals recomputed.

    `max_points` maps each hand-marked question to its maximum; by default it is read from the
    gradebook's `attrs` (set by `GradingRun.gradebook`).
    """
    if max_points is None:
        every = gradebook.attrs.get("max_points", {})
        max_points = {q: every[q] for q in gradebook.attrs.get("manual", [])}
        if not max_points:
            raise ValueError(
                "the gradebook does not say which questions are marked by hand; "
                "pass max_points={question: maximum}"
            )
    book = gradebook.copy()
    found = read_manual_marks(marks, list(book["student"]), max_points)
    for (student, question), (points, _) in found.items():
        book.loc[book["student"] == student, question] = points
    questions = list(gradebook.attrs.get("max_points", max_points))
    book["total"] = book[[q for q in questions if q in book.columns]].sum(axis=1, skipna=True)
    return book


def _verify(originals: list[_Original], lock: threading.Lock) -> set[str]:
    """Restore every original a student's code changed or deleted; the owners affected."""
    touched = set()
    with lock:
        for original in originals:
            if not original.intact():
                try:
                    original.restore()
                except OSError as error:  # keep grading; the status says it
                    original.owner_note = f"could not restore {original.path}: {error}"
                touched.add(original.owner)
    return touched


def grade_folder(
    solutions: Path | str,
    submissions: Path | str,
    out_dir: Path | str | None = None,
    *,
    workers: int = 2,
    cell_timeout: float = 600.0,
    total_timeout: float = 3600.0,
    memory_limit: float = 6.0,
    profile: str = "smoke",
    run_all: bool = False,
    scratch: Path | str | None = None,
    keep_scratch: bool = False,
    on_result: Callable[[SubmissionResult], None] | None = None,
) -> GradingRun:
    """Grade every entry of `submissions` (a notebook, or a folder holding one, per student).

    Args:
        solutions: the lab's solutions notebook (its checks are the ones that run).
        submissions: the folder handed in; never modified (verified, restored if touched).
        out_dir: where gradebook.csv, results.json, feedback/, answers.* and manual_marks.csv
            go; None writes nothing.
        workers: submissions graded at once (each a worker process plus a kernel).
        cell_timeout, total_timeout: seconds per cell and per submission.
        memory_limit: GiB of data segment per kernel.
        profile: LABKIT_PROFILE of the kernels.
        run_all: also run the cells after the last answer cell.
        on_result: called with each SubmissionResult as it is finished (e.g. to show progress).
    Returns:
        The GradingRun: `.gradebook`, `.answers`, `.results`, `.feedback(student)`.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise NotADirectoryError(f"{submissions} is not a folder of submissions")
    items = sorted(submissions.iterdir(), key=lambda p: p.name)
    run = _grade_items(
        Path(solutions),
        items,
        submissions,
        workers=workers,
        on_result=on_result,
        settings=GradeSettings(
            cell_timeout=cell_timeout,
            total_timeout=total_timeout,
            memory_limit=memory_limit,
            profile=profile,
            run_all=run_all,
            scratch=Path(scratch) if scratch else None,
            keep_scratch=keep_scratch,
            threads=max(1, (os.cpu_count() or 1) // max(1, workers)),
        ),
    )
    if out_dir is not None:
        run.write(Path(out_dir))
    return run


def _grade_items(
    solutions: Path,
    items: list[Path],
    folder: Path,
    *,
    workers: int,
    settings: GradeSettings,
    on_result: Callable[[SubmissionResult], None] | None,
) -> GradingRun:
    start = time.perf_counter()
    spec = parse_solutions(solutions)
    entries, originals = _read_entries(items)
    before = set(folder.rglob("*"))
    lock, touched = threading.Lock(), set()
    results: dict[str, SubmissionResult] = {}
    scratch_root = Path(tempfile.mkdtemp(prefix="labkit-grade-", dir=settings.scratch))
    local, handles = threading.local(), []

    def worker() -> WorkerProcess:
        """This thread's worker process: one per parallel slot, reused (torch loads once)."""
        if not hasattr(local, "worker"):
            with lock:
                local.worker = WorkerProcess(
                    scratch_root / f"worker-{len(handles)}.log", settings.memory_bytes
                )
                handles.append(local.worker)
        return local.worker

    applied: set[str] = set()

    def restored(owners: set[str]) -> None:
        """Say so in the status of each owner whose files were restored (once, when graded)."""
        for owner in (owners & set(results)) - applied:
            applied.add(owner)
            kept = [s for s in [results[owner].status] if s != "ok"]
            results[owner].status = _status([*kept, "restored a modified original"])
            results[owner].notes += [
                o.owner_note for o in originals if o.owner == owner and o.owner_note
            ]

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                pool.submit(
                    _grade_entry, spec, e, settings, scratch_root, solutions.name, worker
                ): e
                for e in entries
            }
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # a grader bug must not stop the other submissions
                    status = f"grader error: {type(error).__name__}: {error}"
                    result = SubmissionResult(
                        entry.student, str(entry.path), status, _ungraded(spec, status)
                    )
                results[entry.student] = result
                touched |= _verify(originals, lock)
                restored(touched)
                if on_result is not None:
                    on_result(result)
    finally:
        for handle in handles:
            handle.close()
        if not settings.keep_scratch:
            shutil.rmtree(scratch_root, ignore_errors=True)
    touched |= _verify(originals, lock)
    restored(touched)
    new = sorted(str(p) for p in set(folder.rglob("*")) - before)
    warnings = [f"files appeared in {folder} during grading: {new}"] if new else []
    return GradingRun(
        spec, [results[e.student] for e in entries], time.perf_counter() - start, warnings
    )


def grade_submission(
    solutions: Path | str,
    submission: Path | str,
    *,
    on_result: Callable[[SubmissionResult], None] | None = None,
    **settings: Any,
) -> SubmissionResult:
    """Grade one notebook (or one student's folder), with the guarantees of `grade_folder`.

    Keyword arguments are `GradeSettings` fields (cell_timeout, total_timeout, memory_limit, ...).
    """
    submission = Path(submission)
    run = _grade_items(
        Path(solutions),
        [submission],
        submission.parent,
        workers=1,
        settings=GradeSettings(**settings),
        on_result=on_result,
    )
    return run.results[0]
