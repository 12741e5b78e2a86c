"""Where a bird lab's network starts (labkit.labs.pretraining): ImageNet weights when they are on
disk, else pretraining on the source species once, in the runs folder the calling lab gives."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from labkit.config import shown_path
from labkit.labs.birds import SOURCE_BIRDS, SYNTHETIC_BIRDS, BirdsSettings
from labkit.labs.pretraining import (
    BACKBONES,
    ImageNetWeights,
    new_backbone,
    pretrained,
    pretrained_backbone,
)
from labkit.models.backbones import TapBackbone
from labkit.training.recipe import Recipe

SETTINGS = BirdsSettings(profile="smoke", resize=56, crop=48, synthetic=SYNTHETIC_BIRDS["smoke"],
                         source=SOURCE_BIRDS["smoke"])  # fmt: skip
RECIPE = Recipe(num_epochs=1, batch_size=8, lr=0.05, weight_decay=5e-4, schedule="cosine",
                restore_best=True)  # fmt: skip


def _tiny(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))  # fmt: skip


def test_a_backbone_pretrains_once_in_the_callers_folder(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs" / "05_opam" / "smoke" / "source_backbone"
    first = pretrained_backbone("small_vgg", 8, SETTINGS, RECIPE, runs_dir=runs, root=tmp_path,
                                val_fraction=0.2, progress=False)  # fmt: skip
    assert isinstance(first.model, TapBackbone) and first.model.channels[-1] == 64
    assert first.line.startswith("backbone: small_vgg pretrained by labkit on 4 synthetic source")
    assert "ImageNet" not in first.line  # a narrow VGG has no ImageNet weights to miss
    assert first.origin.startswith("labkit pretraining ") and first.seconds > 0
    assert len(first.class_names) == 4
    (run,) = [p for p in runs.iterdir() if p.is_dir()]  # the caller's folder, keyed by settings
    assert first.origin == f"labkit pretraining {run.name}"
    capsys.readouterr()
    again = pretrained_backbone("small_vgg", 8, SETTINGS, RECIPE, runs_dir=runs, root=tmp_path,
                                val_fraction=0.2, progress=False)  # fmt: skip
    assert "finished earlier" in capsys.readouterr().out  # loaded, not trained again
    assert again.origin == first.origin
    loaded = again.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in first.model.state_dict().items())
    other = pretrained_backbone("small_vgg", 8, SETTINGS, dataclasses.replace(RECIPE, lr=0.02),
                                runs_dir=runs, root=tmp_path, val_fraction=0.2,
                                progress=False)  # fmt: skip
    assert other.origin != first.origin  # another recipe: a run of its own


def test_weights_on_disk_replace_the_pretraining(tmp_path: Path) -> None:
    file = tmp_path / "tiny.pth"
    file.write_bytes(b"12345")
    loaded = _tiny(1000)
    weights = ImageNetWeights("Tiny", file, lambda path: loaded, ("tench",) + ("x",) * 999)
    result = pretrained(_tiny, SETTINGS, RECIPE, name="tiny", runs_dir=tmp_path / "runs",
                        weights=weights, role="network", root=tmp_path, progress=False)  # fmt: skip
    assert result.model is loaded and result.class_names[0] == "tench"
    assert result.line == f"network: Tiny with ImageNet weights from {shown_path(file)}"
    assert result.origin == "ImageNet weights tiny.pth, 5 bytes" and result.seconds == 0
    assert not (tmp_path / "runs").exists() and not (tmp_path / "builtin").exists()


def test_weights_looked_for_and_absent_are_named_and_keep_picks_the_part(tmp_path: Path) -> None:
    missing = ImageNetWeights("Tiny", None, lambda path: _tiny(1000), fetch="vgg16-weights")
    result = pretrained(_tiny, SETTINGS, RECIPE, name="tiny", runs_dir=None, weights=missing,
                        keep=lambda net: net[0], root=tmp_path, progress=False)  # fmt: skip
    assert isinstance(result.model, nn.Conv2d)
    assert result.line.startswith("backbone: tiny pretrained by labkit on 4 synthetic source")
    assert result.line.endswith(
        " s of training (no ImageNet weights on disk: `labkit fetch vgg16-weights` brings them)"
    )


def test_new_backbone_by_name() -> None:
    assert new_backbone("small_vgg", 4).channels == (32, 32, 32)  # the last width, three taps
    with torch.device("meta"):
        assert new_backbone("vgg16").channels[-1] == 512
    with pytest.raises(
        ValueError, match=re.escape(f"backbone 'resnet'; choose one of {BACKBONES}")
    ):
        new_backbone("resnet")
