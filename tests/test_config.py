"""Profile names and how one is chosen, device, seeds and folders."""

from pathlib import Path

import numpy as np
import pytest
import torch

from labkit.config import (
    PROFILE_NAMES,
    data_root,
    device,
    profile_name,
    run_dir,
    seed_everything,
    shown_path,
)


def test_profile_from_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_PROFILE", raising=False)
    assert profile_name() == ("full" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("LABKIT_PROFILE", "smoke")
    assert profile_name() == "smoke"
    assert profile_name("full") == "full"  # the argument wins over the environment
    assert PROFILE_NAMES == ("smoke", "cpu", "full")


def test_unknown_profile_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown profile 'fast'.*smoke, cpu, full"):
        profile_name("fast")
    monkeypatch.setenv("LABKIT_PROFILE", "gpu")
    with pytest.raises(ValueError, match=r"unknown profile 'gpu' \(from the argument or \$LAB"):
        profile_name()


def test_device_prefers_what_is_asked() -> None:
    assert device("cpu") == torch.device("cpu")
    assert device().type in {"cuda", "mps", "cpu"}
    if not torch.cuda.is_available():
        assert device().type != "cuda"


def test_seed_everything_repeats_every_generator() -> None:
    seed_everything(7)
    first = (np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (np.random.rand(), torch.rand(1).item()) == first


def test_folders_follow_argument_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "r"))
    assert data_root() == tmp_path / "d"
    assert data_root(tmp_path / "x") == tmp_path / "x"
    assert run_dir("02", "smoke", "densenet") == tmp_path / "r" / "02" / "smoke" / "densenet"
    monkeypatch.delenv("LABKIT_DATA")
    assert data_root().name == "data"


def test_shown_path_hides_far_absolute_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert shown_path(work / "runs" / "x") == "runs/x"
    assert shown_path(tmp_path / "a" / "runs") == "../../runs"
    far = Path("/somewhere/else/runs/02/cpu/densenet52")
    assert shown_path(far) == ".../runs/02/cpu/densenet52"
    assert shown_path(Path("/scratch/l01/data")) == ".../scratch/l01/data"  # never the root
