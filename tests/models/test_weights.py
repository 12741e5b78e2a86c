"""ImageNet weights as data: what each object carries agrees with torchvision's own weights
table, its preprocessing gives torchvision's preset's pixels, and the file is found on disk only
(an explicit path, `<data>/weights`, torchvision's cache), never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import VGG16_Weights, get_model_weights

from labkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from labkit.models.vgg import VGG_CONFIGS
from labkit.models.weights import VGG16_WEIGHTS, WEIGHTS, vgg_weights


@pytest.mark.parametrize("arch", sorted(WEIGHTS))
def test_each_object_carries_torchvisions_file_preset_and_categories(arch: str) -> None:
    weights, theirs = WEIGHTS[arch], get_model_weights(arch).IMAGENET1K_V1
    assert weights.arch == arch and theirs.url.endswith("/" + weights.file_name)
    assert weights.categories == tuple(theirs.meta["categories"])
    assert len(weights.categories) == 1000
    assert (weights.resize, weights.crop) == (256, 224)
    assert weights.mean == IMAGENET_MEAN and weights.std == IMAGENET_STD


def test_vgg16_is_the_file_torchvision_caches() -> None:
    assert VGG16_WEIGHTS.file_name == Path(VGG16_Weights.IMAGENET1K_V1.url).name
    assert VGG16_WEIGHTS.file_name == "vgg16-397923af.pth"
    assert VGG16_WEIGHTS.name == "VGG-16" and VGG16_WEIGHTS.categories[0] == "tench"


def test_vgg_weights_by_configuration() -> None:
    assert vgg_weights("E").arch == "vgg19" and vgg_weights("E", batch_norm=True).arch == "vgg19_bn"
    assert vgg_weights("A").arch == "vgg11" and vgg_weights("D") is VGG16_WEIGHTS
    published = {config for config in VGG_CONFIGS if vgg_weights(config) is not None}
    assert published == {"A", "B", "D", "E"}  # none for A-LRN or C


def test_transforms_give_torchvisions_preset_within_a_grey_level() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    ours = VGG16_WEIGHTS.transforms()(image)
    theirs = VGG16_Weights.IMAGENET1K_V1.transforms()(image)
    assert ours.shape == theirs.shape == (3, 224, 224) and ours.dtype == torch.float32
    # torchvision resizes the PIL image, labkit the uint8 tensor (rounded): one grey level apart
    one_level = 1 / 255 / min(VGG16_WEIGHTS.std)
    torch.testing.assert_close(ours, theirs, atol=one_level + 1e-5, rtol=0)
    assert (ours - theirs).abs().gt(1e-5).float().mean() < 0.02  # and rarely


def test_found_on_disk_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    data = tmp_path / "data"
    assert VGG16_WEIGHTS.find(root=data) is None  # nothing there, nothing downloaded
    cached = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert VGG16_WEIGHTS.find(root=data) == cached
    assert WEIGHTS["vgg16_bn"].find(root=data) is None  # another file
    beside_the_data = data / "weights" / "vgg16-397923af.pth"
    beside_the_data.parent.mkdir(parents=True)
    beside_the_data.write_bytes(b"")
    assert VGG16_WEIGHTS.find(root=data) == beside_the_data  # the data folder first
    monkeypatch.setenv("LABKIT_DATA", str(data))
    assert VGG16_WEIGHTS.find() == beside_the_data
    own = tmp_path / "mine.pth"
    assert VGG16_WEIGHTS.find(own, root=data) is None  # a path given is the only place looked
    own.write_bytes(b"")
    assert VGG16_WEIGHTS.find(own, root=data) == own
