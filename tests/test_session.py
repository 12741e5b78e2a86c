"""start_lab prints one line each for lab, profile and device, and seeds the generators."""

import pytest
import torch

from labkit.config import PROFILES
from labkit.session import start_lab


def test_start_lab_prints_and_seeds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    lab = start_lab("02_x", "things", profile="smoke", seed=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "lab: 02_x: things"
    assert lines[1].startswith("profile: smoke")
    assert lines[2].startswith("device: ")
    assert lab.profile == PROFILES["smoke"] and lab.seed == 3
    first = torch.rand(1)
    start_lab("02_x", "things", profile=PROFILES["smoke"], seed=3)
    assert torch.equal(torch.rand(1), first)
    assert lab.run_dir("densenet") == tmp_path / "02_x" / "smoke" / "densenet"


def test_full_profile_on_cpu_says_it_will_be_slow(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("the advice is for machines without CUDA")
    start_lab("02_x", "things", profile="full")
    assert "will be slow" in capsys.readouterr().out
