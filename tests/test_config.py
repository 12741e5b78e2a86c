"""Profiles, device, seeds and folders."""

from pathlib import Path

import numpy as np
import pytest
import torch

from labkit.config import PROFILES, data_root, device, get_profile, run_dir, seed_everything


def test_profile_from_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_PROFILE", raising=False)
    expected = "full" if torch.cuda.is_available() else "smoke"
    assert get_profile().name == expected
    monkeypatch.setenv("LABKIT_PROFILE", "full")
    assert get_profile().name == "full"
    assert get_profile("smoke").name == "smoke"  # the argument wins over the environment


def test_full_profile_keeps_the_handout_settings() -> None:
    full = PROFILES["full"]
    assert (full.image_size, full.batch_size, full.num_epochs) == (32, 64, 20)
    assert (full.lr, full.momentum, full.weight_decay) == (0.01, 0.9, 5e-4)
    assert full.train_per_class is None and full.test_per_class is None


def test_smoke_profile_is_smaller_everywhere() -> None:
    smoke, full = PROFILES["smoke"], PROFILES["full"]
    assert smoke.image_size < full.image_size and smoke.num_epochs < full.num_epochs
    assert smoke.train_per_class is not None and smoke.train_per_class > 0


def test_overrides_and_bad_names() -> None:
    assert get_profile("full", num_epochs=3).num_epochs == 3
    with pytest.raises(ValueError, match="unknown profile 'fast'.*full.*smoke"):
        get_profile("fast")
    with pytest.raises(ValueError, match=r"unknown profile fields \['epochs'\]"):
        get_profile("full", epochs=3)


def test_summary_names_profile_and_sizes() -> None:
    line = PROFILES["smoke"].summary()
    assert line.startswith("profile: smoke") and "16px" in line and "2 epochs" in line
    lab03 = PROFILES["full"].summary(("triplet_epochs", "triplets_per_epoch"))
    assert lab03 == "profile: full (images 32px, train all, 5 epochs, 8000 triplets an epoch)"
    with pytest.raises(ValueError, match="no label for profile field 'momentum'"):
        PROFILES["full"].summary(("momentum",))


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
    assert (
        run_dir("02", PROFILES["smoke"], "densenet") == tmp_path / "r" / "02" / "smoke" / "densenet"
    )
    monkeypatch.delenv("LABKIT_DATA")
    assert data_root().name == "data"


def test_full_profile_keeps_the_handouts_triplet_settings() -> None:
    full = PROFILES["full"]
    assert (full.embedding_size, full.alpha, full.margin) == (128, 10.0, 2.0)
    assert (full.triplets_per_epoch, full.triplet_batch_size) == (8000, 16)
    assert (full.triplet_lr, full.triplet_epochs, full.lr_step_every) == (0.008, 5, 4)
    assert full.knn_neighbors == 5
    # a mining batch holds as many images as a step of random triplets
    assert full.pk_classes * full.pk_images == 3 * full.triplet_batch_size
    smoke = PROFILES["smoke"]
    assert smoke.triplets_per_epoch < full.triplets_per_epoch
    assert smoke.triplet_epochs < full.triplet_epochs
