"""labkit: the plumbing behind the course notebooks (data, models, training, plots, grading)."""

from labkit.config import Profile, data_root, device, get_profile, run_dir, seed_everything

__all__ = ["Profile", "data_root", "device", "get_profile", "run_dir", "seed_everything"]
__version__ = "0.1.0"
