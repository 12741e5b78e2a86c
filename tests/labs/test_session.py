"""start_lab prints one line each for lab, profile and device, and seeds the generators."""

import pytest
import torch

from labkit.labs import bcnn_hbp, densenet_resnext
from labkit.labs.session import MEANINGS, SMOKE_LINE, LabEntry, fit_to_memory, start_lab


def test_start_lab_prints_and_seeds(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    settings = densenet_resnext.settings("cpu")
    lab = start_lab("02_x", "things", settings, seed=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "lab: 02_x: things"
    expected = "images 16px, all training images, batch 64, 10 epochs, lr 0.02, one_cycle schedule"
    assert lines[1] == f"profile: cpu ({expected})"
    assert lines[2] == f"meaning: {MEANINGS['cpu']}" and "laptop" in lines[2]
    assert lines[3].startswith("switch: set LABKIT_PROFILE=") and 'start("cpu")' in lines[3]
    assert lines[4].startswith("device: ")
    assert lab.settings is settings and lab.profile == "cpu" and lab.seed == 3
    first = torch.rand(1)
    start_lab("02_x", "things", settings, seed=3)
    assert torch.equal(torch.rand(1), first)
    assert lab.run_dir("densenet") == tmp_path / "02_x" / "cpu" / "densenet"


def test_smoke_says_first_that_its_numbers_mean_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    densenet_resnext.start("smoke")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == SMOKE_LINE and "mean nothing" in lines[0]
    assert lines[1].startswith("lab: 02_densenet_resnext")
    densenet_resnext.start("cpu")
    assert "mean nothing" not in capsys.readouterr().out


def test_full_profile_on_cpu_says_it_will_be_slow(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("the advice is for machines without CUDA")
    densenet_resnext.start("full")
    assert "will be slow; LABKIT_PROFILE=cpu" in capsys.readouterr().out


def test_a_lab_entry_gives_settings_and_start_once_for_every_lab(capsys) -> None:
    entry = LabEntry("09_x", "things", densenet_resnext.PROFILES)
    assert entry.settings("cpu", image_size=8) == densenet_resnext.settings("cpu", image_size=8)
    lab = entry.start("smoke", seed=1, image_size=8)
    assert lab.name == "09_x" and lab.settings.image_size == 8 and lab.seed == 1
    assert "lab: 09_x: things" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"unknown settings \['nope'\]"):
        entry.settings("cpu", nope=1)
    assert densenet_resnext.start.__self__ is densenet_resnext.ENTRY  # the lab module's own


def test_fit_to_memory_lowers_each_micro_batch_and_says_why() -> None:
    s = bcnn_hbp.settings("full")  # stage 1: 12 x 4, stage 2: 8 x 2
    per_image, fixed = 2**28, 2**30  # 256 MiB an image, 1 GiB of weights
    needs = {"stage1": (fixed, per_image), "stage2": (fixed, per_image)}
    for budget_images, stage1, stage2 in (
        (12, (12, 4), (8, 2)),  # both fit: nothing changes, nothing printed
        (8, (8, 6), (8, 2)),
        (6, (6, 8), (4, 4)),
        (4, (4, 12), (4, 4)),
        (2, (2, 24), (2, 8)),
    ):
        fitted, lines = fit_to_memory(s, fixed + budget_images * per_image, needs)
        assert (fitted.stage1.batch_size, fitted.stage1.accum_steps) == stage1
        assert (fitted.stage2.batch_size, fitted.stage2.accum_steps) == stage2
        assert fitted.stage1.effective_batch == 48 and fitted.stage2.effective_batch == 16
        assert len(lines) == (stage1 != (12, 4)) + (stage2 != (8, 2))
    fitted, lines = fit_to_memory(s, fixed + 4 * per_image, {"stage2": (fixed, per_image)})
    assert (fitted.stage2.batch_size, fitted.stage2.accum_steps) == (
        4,
        4,
    ) and fitted.stage1 == s.stage1
    assert lines == [
        "memory: stage2 micro-batch 8 x 2 steps -> 4 x 4 (the effective batch 16 kept): 8 images "
        "need 3.0 GiB, 2.0 GiB free"
    ]
    assert bcnn_hbp.settings("full").stage2.accum_steps == 2  # the profile itself is untouched


def test_lab04_measures_both_stages_memory() -> None:
    s = bcnn_hbp.settings("smoke")
    needs = s.memory_needs(torch.device("cpu"))
    assert set(needs) == {"stage1", "stage2"}
    (fixed1, image1), (fixed2, image2) = needs["stage1"], needs["stage2"]
    assert 0 < image1 < image2  # stage 1 keeps no backbone activations for backward
    assert 0 < fixed1 < fixed2  # nor the backbone's gradients and momentum
    fitted, _ = fit_to_memory(s, fixed2 + 1.5 * image2, needs)
    assert (fitted.stage2.batch_size, fitted.stage2.accum_steps) == (1, 8)
