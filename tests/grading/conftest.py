"""The grading tests: unit tests in one folder per side of the grader (authoring, scheduler,
worker, kernel, reports, as in labkit/grading/), end-to-end runs of real kernels here.

The helpers that build labs and submissions (`toylab`, `answered`, `lab02_submissions`) live in
this folder; it is put on the import path for the tests in the side folders too.
"""

from __future__ import annotations

import sys
from pathlib import Path

HELPERS = str(Path(__file__).resolve().parent)
if HELPERS not in sys.path:
    sys.path.insert(0, HELPERS)
