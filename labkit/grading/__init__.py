"""Instructor tools: release student notebooks from the solutions (grading follows)."""

from labkit.grading.release import check_release, release_all, release_notebook

__all__ = ["check_release", "release_all", "release_notebook"]
