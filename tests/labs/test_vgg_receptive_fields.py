"""Lab 01's module: settings per profile, the VGG it builds, where its weights come from, the
photo split, pretraining and fine-tuning through fit (a second call loads), and the table of
dense against multi-crop evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labkit.data.photos import read_class_index
from labkit.labs import vgg_receptive_fields as l1
from labkit.labs.pretraining import Pretrained
from labkit.models.vgg import vgg


def test_full_profile_is_the_handouts_recipe() -> None:
    full = l1.settings("full")
    assert (full.config, full.batch_norm, full.width, full.hidden) == ("E", False, 64, 4096)
    assert (full.crop, full.feature_grid, full.resize) == (224, 7, 256)
    assert (full.finetune.lr, full.finetune.momentum, full.finetune.weight_decay) == (
        0.01, 0.9, 5e-4,
    )  # fmt: skip
    assert full.finetune.schedule == "plateau" and full.val_fraction == 0.2
    assert full.grid == 5  # 5 x 5 crops x 2 flips x 3 scales = 150 an image, as in the paper
    for profile in ("full", "cpu", "smoke"):  # the fixed S of pretraining is crop + 32
        s = l1.settings(profile)
        assert s.crop % 32 == 0 and s.scale_min >= s.crop and s.resize == s.crop + 32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"config": "F"}, "unknown VGG configuration 'F'"),
        ({"crop": 100}, "crop=100: VGG halves it five times"),
        ({"scale_min": 60}, "scale jitter needs crop <= scale_min <= scale_max"),
        ({"scale_max": 60}, "scale jitter needs crop <= scale_min <= scale_max"),
    ],
)
def test_bad_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        l1.settings("smoke", **overrides)


def test_build_vgg_reads_the_crop_as_one_window() -> None:
    s = l1.settings("smoke")
    model = l1.build_vgg(s, num_classes=3).eval()
    assert model.config == "A" and model.grid == s.feature_grid == 2
    with torch.no_grad():
        assert model(torch.zeros(2, 3, s.crop, s.crop)).shape == (2, 3)


def test_imagenet_weights_are_found_on_disk_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    full = l1.settings("full")
    assert l1.find_vgg_weights(full) is None  # nothing cached, nothing downloaded
    cached = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert l1.find_vgg_weights(full) == cached
    assert l1.find_vgg_weights(l1.settings("full", batch_norm=True)) is None  # vgg19_bn's file
    assert l1.find_vgg_weights(l1.settings("full", config="C")) is None  # none published
    assert l1.find_vgg_weights(l1.settings("cpu")) is None  # a narrow VGG has no such weights
    own = tmp_path / "mine.pth"
    own.write_bytes(b"")
    assert l1.find_vgg_weights(l1.settings("full", imagenet_weights=str(own))) == own


@pytest.mark.slow
def test_imagenet_weights_load_into_the_settings_vgg(tmp_path: Path) -> None:
    s = l1.settings("full", config="A", imagenet_weights=str(tmp_path / "vgg11.pth"))
    with torch.device("meta"):
        shapes = vgg("A").state_dict()
    torch.save({k: torch.zeros(v.shape) for k, v in shapes.items()}, tmp_path / "vgg11.pth")
    pretrained = l1.pretrained_vgg(s)
    assert "ImageNet weights from" in pretrained.line
    assert len(pretrained.class_names) == 1000 and pretrained.class_names[0] == "tench"
    assert all(not p.detach().any() for p in pretrained.model.parameters())


def test_absent_weights_name_the_command_that_brings_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    looked_for = []
    monkeypatch.setattr(l1, "pretrained", lambda *args, **kwargs: looked_for.append(kwargs))
    for config in ("E", "D", "A"):
        l1.pretrained_vgg(l1.settings("full", config=config))
    l1.pretrained_vgg(l1.settings("smoke"))  # a narrow VGG: no weights file would fit it
    fetch = [kwargs["weights"].fetch for kwargs in looked_for]
    assert fetch == ["vgg19-weights", "vgg16-weights", "", ""]  # none brings VGG-11's


def test_photo_split_falls_back_to_synthetic_birds_and_says_so(tmp_path: Path, capsys) -> None:
    s = l1.settings("smoke")
    split = l1.photo_split(s, root=tmp_path)
    line = capsys.readouterr().out
    assert "no flower_photos under" in line and "5 synthetic bird species" in line
    assert "(`labkit fetch flowers` brings flower_photos)" in line
    assert len(split.class_names) == 5 and read_class_index(split.class_index) == split.class_names
    per_class = s.photo_birds.train_per_class + s.photo_birds.test_per_class
    assert (split.counts["train"] + split.counts["val"]).tolist() == [per_class] * 5
    train, val = l1.photo_datasets(split, s)
    assert train[0][0].shape == val[0][0].shape == (3, s.crop, s.crop)
    again = l1.photo_split(s, root=tmp_path, verbose=False)  # the same split, reused
    assert again[:4] == split[:4] and again.counts.equals(split.counts)


def test_photo_split_uses_flower_photos_when_present(tmp_path: Path, capsys) -> None:
    from PIL import Image

    for name in ("daisy", "tulips"):
        (tmp_path / "flower_photos" / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (40, 30), (i * 40, 90, 30)).save(
                tmp_path / "flower_photos" / name / f"{i}.jpg"
            )
    split = l1.photo_split(l1.settings("smoke"), root=tmp_path)
    assert split.class_names == ("daisy", "tulips")
    assert "flower_photos at" in capsys.readouterr().out
    assert split.counts["val"].tolist() == [1, 1]


def test_pretraining_and_fine_tuning_run_once(tmp_path: Path) -> None:
    s = l1.settings("smoke")
    runs = tmp_path / "runs"
    pretrained = l1.pretrained_vgg(s, runs_dir=runs / "pre", root=tmp_path, progress=False)
    assert "trained by labkit on 4 synthetic source species" in pretrained.line
    assert pretrained.model.classifier[6].out_features == 4
    split = l1.photo_split(s, root=tmp_path, verbose=False)
    before = {k: v.clone() for k, v in pretrained.model.state_dict().items()}
    model, history = l1.fine_tune(pretrained, split, s, runs_dir=runs / "fine", progress=False)
    assert model.classifier[6].out_features == 5 and len(history) == s.finetune.num_epochs
    assert all(torch.equal(v, pretrained.model.state_dict()[k]) for k, v in before.items())
    again = l1.pretrained_vgg(s, runs_dir=runs / "pre", root=tmp_path, progress=False)
    assert again.origin == pretrained.origin
    reloaded = again.model.state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in before.items())
    model2, history2 = l1.fine_tune(again, split, s, runs_dir=runs / "fine", progress=False)
    assert history2["seconds"].tolist() == history["seconds"].tolist()  # loaded, not retrained
    second = model2.state_dict()
    assert all(torch.equal(second[k], v) for k, v in model.state_dict().items())
    scratch, history3 = l1.train_from_scratch(split, s, runs_dir=runs / "scratch", progress=False)
    assert scratch.classifier[6].out_features == 5 and len(history3) == s.finetune.num_epochs
    assert not torch.equal(scratch.features[0].weight, model.features[0].weight)


def test_what_is_scored_depends_on_the_pretraining(tmp_path: Path) -> None:
    s = l1.settings("smoke", eval_images=6)
    split = l1.photo_split(s, root=tmp_path, verbose=False)
    source = l1.build_vgg(s, num_classes=4)
    fine = l1.build_vgg(s, num_classes=5)
    on_source = Pretrained(source, "", "labkit pretraining 1234", ("a", "b", "c", "d"))
    pre, tuned = l1.evaluation_sets(on_source, fine, split, s, root=tmp_path)
    assert pre.model is source and len(pre.class_names) == 4 and pre.trained_at == "S = 96"
    assert (pre.single, pre.scales) == (96, (64, 96, 128))  # S = resize, fixed
    assert pre.images.shape == (6, 3, 128, 128)  # at the largest test scale
    assert sorted(set(pre.labels.tolist())) == [0, 1, 2, 3]  # spread over the classes
    assert pre.line.endswith(
        "4 source species' test images: 6 images; trained at S = 96, so tested at Q = 96 alone "
        "and at Q = 64, 96, 128 together"
    )
    assert tuned.model is fine and tuned.class_names == split.class_names
    assert tuned.trained_at == "S in [96, 160]" and tuned.scales == (96, 128, 160)
    assert tuned.images.shape == (5, 3, 160, 160)  # all 5 validation photos
    on_imagenet = Pretrained(source, "", "ImageNet weights vgg11.pth, 1 bytes", ("x",) * 1000)
    (only,) = l1.evaluation_sets(on_imagenet, fine, split, s, root=tmp_path)
    assert only.model is fine and "photo classes' validation images" in only.line


def test_a_scale_below_the_crop_is_left_out_and_said(tmp_path: Path) -> None:
    s = l1.settings("smoke", resize=64, eval_images=2)
    split = l1.photo_split(s, root=tmp_path, verbose=False)
    model = l1.build_vgg(s, num_classes=4)
    pretrained = Pretrained(model, "", "labkit pretraining 1234", ("a", "b", "c", "d"))
    pre = l1.evaluation_sets(pretrained, model, split, s, root=tmp_path)[0]
    assert pre.scales == (64, 96) and "(32 left out: below the 64-pixel crop)" in pre.line


def test_evaluation_table_scores_the_same_images_five_ways(tmp_path: Path) -> None:
    s = l1.settings("smoke", eval_images=6)
    torch.manual_seed(0)
    model = l1.build_vgg(s, num_classes=4).eval()
    pretrained = Pretrained(model, "", "labkit pretraining 1234", ("a", "b", "c", "d"))
    split = l1.photo_split(s, root=tmp_path, verbose=False)
    pre, tuned = l1.evaluation_sets(pretrained, l1.build_vgg(s, 5), split, s, root=tmp_path)
    table = l1.compare_evaluations(pre, s, batch_size=5, progress=False)
    assert list(table.index) == [
        "centre crop, single scale", "dense, single scale", "dense, all scales + flips",
        "multi-crop, all scales + flips", "dense + multi-crop",
    ]  # fmt: skip
    assert table["test scales Q"].tolist() == ["96", "96"] + ["64, 96, 128"] * 3
    assert table["forward passes per image"].tolist() == [1, 1, 6, 24, 30]
    assert table["top-1 error"].between(0, 1).all()
    assert table["top-5 error"].isna().all()  # 4 classes: 0 by definition, left out
    # the centre crop row is the model on centre crops of the images at the single scale
    from torchvision.transforms.v2 import functional as F

    single = F.resize(pre.images, [pre.single], antialias=True)
    with torch.no_grad():
        logits = model(F.center_crop(single, [s.crop]))
    expected = float((logits.argmax(1) != pre.labels).float().mean())
    assert table.loc["centre crop, single scale", "top-1 error"] == pytest.approx(expected)
    five = l1.compare_evaluations(tuned, s, batch_size=5, progress=False)
    assert five["test scales Q"].iloc[0] == "128" and five["top-5 error"].isna().all()


def test_window_grid_is_centred_at_multiples_of_32() -> None:
    s = l1.settings("cpu")
    features = l1.build_vgg(s, num_classes=3).features
    table = l1.window_grid(features, (96, 112, 128, 144, 160), s.feature_grid)
    assert table["last map"].tolist() == [3, 3, 4, 4, 5]
    assert table["windows per side"].tolist() == [1, 1, 2, 2, 3]
    assert table["grid's centre off by (px)"].tolist() == [0, 8, 0, 8, 0]


def test_pixels_past_the_last_window_still_reach_the_logits() -> None:
    """At 112 pixels (3.5 cells of 32) the floor drops half a cell, yet the last 16 rows and
    columns still get a gradient: their units' fields reach into the window."""
    from labkit.vgg.dense_evaluation import fully_convolutional

    s = l1.settings("cpu")
    torch.manual_seed(0)
    fc = fully_convolutional(l1.build_vgg(s, num_classes=3)).eval()
    image = torch.randn(1, 3, 112, 112, requires_grad=True)
    fc(image).sum().backward()
    grad = image.grad.abs().sum(dim=(0, 1))
    assert grad[-16:].sum() > 0 and grad[:, -16:].sum() > 0
    assert (grad[-1] > 0).any() and (grad[:, -1] > 0).any()
