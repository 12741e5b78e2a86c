"""Instructor tools: release student notebooks and the student kit, grade submissions."""

from labkit.grading.grade import GradeSettings, grade_folder, grade_submission
from labkit.grading.gradebook import GradingRun
from labkit.grading.kit import KitError, build_kit, check_kit
from labkit.grading.marks import merge_manual_marks, read_manual_marks
from labkit.grading.protocol import LabSpec, Question, parse_solutions
from labkit.grading.release import check_release, release_all, release_notebook
from labkit.grading.results import Outcome, QuestionResult, Status, SubmissionResult
from labkit.grading.sandbox import SandboxError, find_sandbox

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
