"""labkit: the plumbing behind the course notebooks (data, models, training, plots, grading)."""

from labkit.config import Profile, data_root, device, get_profile, run_dir, seed_everything
from labkit.session import Lab, start_lab

__all__ = [
    "Lab",
    "Profile",
    "data_root",
    "device",
    "get_profile",
    "run_dir",
    "seed_everything",
    "start_lab",
]
__version__ = "0.1.0"
