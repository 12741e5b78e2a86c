"""labkit: the plumbing behind the course notebooks (data, models, training, plots, grading).

Each lab's settings and glue live in the lab layer, `labkit.labs`; a notebook starts with
`lab = labkit.labs.<lab module>.start()`.
"""

from labkit.config import PROFILE_NAMES, data_root, device, profile_name, run_dir, seed_everything
from labkit.labs.session import Lab, start_lab

__all__ = [
    "PROFILE_NAMES",
    "Lab",
    "data_root",
    "device",
    "profile_name",
    "run_dir",
    "seed_everything",
    "start_lab",
]
__version__ = "0.1.0"
