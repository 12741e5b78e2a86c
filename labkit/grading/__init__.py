"""Instructor tools: release student notebooks and the student kit, grade submissions.

Grouped by the side each module runs on:

- `authoring/`: the question protocol, release, the student kit (the instructor's side);
- `scheduler/`: the grader's own process, which schedules submissions onto workers and scores
  them (`grade_folder`);
- `worker/`: a worker process that drives one student's kernel and runs the checks;
- `kernel/`: the code the worker sends into the student's kernel as source text;
- `reports/`: results, the gradebook, feedback and hand marks.

docs/GRADING.md walks through how a submission runs.
"""

from labkit.grading.authoring.kit import KitError, build_kit, check_kit
from labkit.grading.authoring.protocol import LabSpec, Question, parse_solutions
from labkit.grading.authoring.release import check_release, release_all, release_notebook
from labkit.grading.reports.gradebook import GradingRun
from labkit.grading.reports.marks import merge_manual_marks, read_manual_marks
from labkit.grading.reports.results import Outcome, QuestionResult, Status, SubmissionResult
from labkit.grading.scheduler.run import grade_folder, grade_submission
from labkit.grading.scheduler.sandbox import SandboxError, find_sandbox
from labkit.grading.scheduler.submission import GradeSettings

__all__ = [
    "GradeSettings",
    "GradingRun",
    "KitError",
    "LabSpec",
    "Outcome",
    "Question",
    "QuestionResult",
    "SandboxError",
    "Status",
    "SubmissionResult",
    "build_kit",
    "check_kit",
    "check_release",
    "find_sandbox",
    "grade_folder",
    "grade_submission",
    "merge_manual_marks",
    "parse_solutions",
    "read_manual_marks",
    "release_all",
    "release_notebook",
]
