"""Lab 01's module: settings per profile, the VGG it builds, where its weights come from, the
photo split, pretraining and fine-tuning through fit (a second call loads), and the table of
dense against multi-crop evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labkit.data.folder_split import read_class_index
from labkit.labs import vgg_receptive_fields as l1
from labkit.models.vgg import vgg


def test_full_profile_is_the_handouts_recipe() -> None:
    full = l1.settings("full")
    assert (full.config, full.batch_norm, full.width, full.hidden) == ("E", False, 64, 4096)
    assert (full.crop, full.feature_grid, full.scales) == (224, 7, (256, 384, 512))
    assert (full.finetune.lr, full.finetune.momentum, full.finetune.weight_decay) == (
        0.01, 0.9, 5e-4,
    )  # fmt: skip
    assert full.finetune.schedule == "plateau" and full.val_fraction == 0.2
    assert full.grid == 5  # 5 x 5 crops x 2 flips x 3 scales = 150 an image, as in the paper
    for profile in ("cpu", "smoke"):
        s = l1.settings(profile)
        assert s.crop % 32 == 0 and s.scale_min >= s.crop


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


def test_imagenet_weights_load_into_the_settings_vgg(tmp_path: Path) -> None:
    s = l1.settings("full", config="A", imagenet_weights=str(tmp_path / "vgg11.pth"))
    with torch.device("meta"):
        shapes = vgg("A").state_dict()
    torch.save({k: torch.zeros(v.shape) for k, v in shapes.items()}, tmp_path / "vgg11.pth")
    pretrained = l1.pretrained_vgg(s)
    assert "ImageNet weights from" in pretrained.line
    assert len(pretrained.class_names) == 1000 and pretrained.class_names[0] == "tench"
    assert all(not p.detach().any() for p in pretrained.model.parameters())


def test_photo_split_falls_back_to_synthetic_birds_and_says_so(tmp_path: Path, capsys) -> None:
    s = l1.settings("smoke")
    split = l1.photo_split(s, root=tmp_path)
    line = capsys.readouterr().out
    assert "no flower_photos under" in line and "5 synthetic bird species" in line
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
    on_source = l1.Pretrained(source, "", "labkit pretraining 1234", ("a", "b", "c", "d"))
    scored = l1.evaluation_set(on_source, fine, split, s, root=tmp_path)
    assert scored.model is source and len(scored.class_names) == 4
    assert scored.images.shape == (6, 3, s.scale_max, s.scale_max)
    assert sorted(set(scored.labels.tolist())) == [0, 1, 2, 3]  # spread over the classes
    assert scored.line.endswith("4 source species' test images: 6 images")
    on_imagenet = l1.Pretrained(source, "", "ImageNet weights vgg11.pth, 1 bytes", ("x",) * 1000)
    scored = l1.evaluation_set(on_imagenet, fine, split, s, root=tmp_path)
    assert scored.model is fine and scored.class_names == split.class_names
    assert scored.images.shape == (5, 3, s.scale_max, s.scale_max)  # all 5 validation photos
    assert "photo classes' validation images" in scored.line


def test_evaluation_table_scores_the_same_images_five_ways(tmp_path: Path) -> None:
    s = l1.settings("smoke", eval_images=6)
    torch.manual_seed(0)
    model = l1.build_vgg(s, num_classes=4).eval()
    pretrained = l1.Pretrained(model, "", "labkit pretraining 1234", ("a", "b", "c", "d"))
    split = l1.photo_split(s, root=tmp_path, verbose=False)
    images, labels = l1.evaluation_set(pretrained, model, split, s, root=tmp_path)[1:3]
    table = l1.compare_evaluations(model, images, labels, s, batch_size=5, progress=False)
    assert list(table.index) == [
        "centre crop, Q middle", "dense, Q middle", "dense, 3 scales + flips",
        "multi-crop, 3 scales + flips", "dense + multi-crop",
    ]  # fmt: skip
    assert table["forward passes per image"].tolist() == [1, 1, 6, 24, 30]
    assert table["top-1 error"].between(0, 1).all() and (table["top-5 error"] == 0).all()
    # the centre crop row is the model on centre crops of the images at the middle scale
    from torchvision.transforms.v2 import functional as F

    middle = F.resize(images, [s.scales[1]], antialias=True)
    with torch.no_grad():
        logits = model(F.center_crop(middle, [s.crop]))
    expected = float((logits.argmax(1) != labels).float().mean())
    assert table.loc["centre crop, Q middle", "top-1 error"] == pytest.approx(expected)
