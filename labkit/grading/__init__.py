"""Instructor tools: release student notebooks from the solutions, grade submissions."""

from labkit.grading.grade import (
    GradingRun,
    QuestionResult,
    SubmissionResult,
    grade_folder,
    grade_submission,
    merge_manual_marks,
)
from labkit.grading.protocol import LabSpec, Question, parse_solutions
from labkit.grading.release import check_release, release_all, release_notebook

__all__ = [
    "GradingRun",
    "LabSpec",
    "Question",
    "QuestionResult",
    "SubmissionResult",
    "check_release",
    "grade_folder",
    "grade_submission",
    "merge_manual_marks",
    "parse_solutions",
    "release_all",
    "release_notebook",
]
