"""nbgrader itself on the five labs: generate_assignment, autograde, and labkit's grader beside it.

For each lab, a throw-away nbgrader course takes `solutions/NN_*.ipynb` as its source, releases it
with `nbgrader generate_assignment`, and autogrades two submissions made from nbgrader's own
release: the model answers put back (every automatic point expected) and the release as it is
(none expected). labkit's grader grades the same two files; the points per question must agree.
(nbgrader runs the checks in the student's kernel and does not see labkit's call recording, so
an answer that calls a forbidden function passes there: that is not compared.)

Needs nbgrader 0.9.6 in the environment that runs this script, beside labkit, and is not part of
the test suite (nbgrader is no dependency of the kit):

    python3 -m venv /tmp/nbg && /tmp/nbg/bin/pip install "nbgrader==0.9.6" -e .
    LABKIT_PROFILE=smoke /tmp/nbg/bin/python results/nbgrader_agreement.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from labkit.grading import grade_submission, parse_solutions
from labkit.grading.authoring.protocol import BEGIN_SOLUTION, END_SOLUTION, nbgrader_meta

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "labkit"
c.CourseDirectory.root = {root!r}
c.Autograde.create_student = True
c.ExecutePreprocessor.timeout = 600
"""


def _nbgrader(*args: str, course: Path) -> None:
    bin_dir = Path(sys.executable).parent  # nbgrader runs `alembic` from the PATH
    command = [str(bin_dir / "nbgrader"), *args, "--force", f"--CourseDirectory.root={course}"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        command, cwd=course, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")


def _answered(release: nbformat.NotebookNode, solutions: nbformat.NotebookNode):
    """nbgrader's release with the solutions' answers put back, cell by grade_id."""
    answers = {}
    for cell in solutions.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            lines = cell.source.split("\n")
            kept = [line for line in lines if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)]
            answers[meta["grade_id"]] = "\n".join(kept)
    answered = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in answered.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return answered


def _nbgrader_points(course: Path, lab: str, student: str, spec) -> dict[str, float]:
    """Automatic points per question from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    by_check = {c.grade_id: q.grade_id for q in spec.auto for c in q.checks}
    points = {q.grade_id: 0.0 for q in spec.auto}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(lab, lab, student)
        for grade in submission.grades:
            if grade.name in by_check:
                points[by_check[grade.name]] += float(grade.auto_score or 0.0)
    return points


def agree(solutions_path: Path, work: Path) -> dict:
    """Both graders on one lab's two submissions; a dict of their points and the seconds."""
    lab = solutions_path.stem
    spec = parse_solutions(solutions_path)
    course = work / lab
    (course / "source" / lab).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    shutil.copy(solutions_path, course / "source" / lab / f"{lab}.ipynb")
    started = time.perf_counter()
    _nbgrader("generate_assignment", lab, course=course)
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    solutions = nbformat.read(solutions_path, as_version=4)
    submissions = {"model": _answered(release, solutions), "unanswered": release}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / lab
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{lab}.ipynb")
    _nbgrader("autograde", lab, course=course)
    nbgrader_s = time.perf_counter() - started
    result = {"lab": lab, "nbgrader_seconds": round(nbgrader_s, 1), "students": {}}
    for student in submissions:
        theirs = _nbgrader_points(course, lab, student, spec)
        ours = grade_submission(
            solutions_path, course / "submitted" / student / lab / f"{lab}.ipynb", sandbox="none"
        )
        labkit_points = {q.question: q.points for q in ours.questions if not q.manual}
        result["students"][student] = {"nbgrader": theirs, "labkit": labkit_points}
    result["agree"] = all(s["nbgrader"] == s["labkit"] for s in result["students"].values())
    result["model_full"] = result["students"]["model"]["labkit"] == {
        q.grade_id: q.points for q in spec.auto
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labs", nargs="*", help="lab numbers (default: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    os.environ.setdefault("LABKIT_PROFILE", "smoke")
    paths = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if args.labs:
        paths = [p for p in paths if p.name[:2] in {n.zfill(2) for n in args.labs}]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for path in paths:
            results.append(agree(path, Path(work)))
            row = results[-1]
            print(
                f"{row['lab']}: agree={row['agree']} model_full={row['model_full']} "
                f"nbgrader {row['nbgrader_seconds']} s: "
                + "; ".join(
                    f"{s}: nbgrader {v['nbgrader']} labkit {v['labkit']}"
                    for s, v in row["students"].items()
                ),
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["agree"] and r["model_full"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
