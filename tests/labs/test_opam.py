"""Lab 05's module: settings per profile, the whole images, object and part attention on the
smoke profile's synthetic birds with a small untrained ClassNet through the lab's settings, the
fusion table, and the pretraining in the lab's own runs folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labkit.data.synthbirds import CUB_PARTS
from labkit.labs import opam as l5
from labkit.labs.bcnn_hbp import settings as lab04_settings
from labkit.models.backbones import small_vgg_backbone


def test_profiles() -> None:
    full, cpu = l5.settings("full"), l5.settings("cpu")
    assert (full.backbone, full.attention_size, full.num_parts) == ("vgg16", 448, 2)
    lab04 = lab04_settings("cpu")  # the same backbone and pretraining as lab 04's
    for name in ("backbone", "width", "resize", "crop", "pretrain", "source", "val_fraction"):
        assert getattr(cpu, name) == getattr(lab04, name), name
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        l5.settings("cpu", backbone="resnet")
    with pytest.raises(ValueError, match="saliency_threshold must be in"):
        l5.settings("cpu", saliency_threshold=1.5)
    with pytest.raises(ValueError, match="num_parts must be at least 1"):
        l5.settings("cpu", num_parts=0)
    with pytest.raises(ValueError, match="own_boxes must be at least 1"):
        l5.settings("cpu", own_boxes=0)
    assert cpu.own_boxes >= 400  # every cpu test image is boxed with the student's functions
    with pytest.raises(ValueError, match="unknown proposal_method 'windows'; choose one of"):
        l5.settings("cpu", proposal_method="windows")
    with pytest.raises(ValueError, match="unknown fusion_criterion"):
        l5.settings("cpu", fusion_criterion="f1")
    with pytest.raises(ValueError, match="unknown saliency"):
        l5.settings("cpu", saliency="gradcam")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    """The smoke birds, a small untrained ClassNet, and attention on the test images."""
    root = tmp_path_factory.mktemp("data")
    s = l5.settings("smoke")
    splits = l5.load_splits(s, root=root)
    torch.manual_seed(0)
    classnet = l5.new_classnet(small_vgg_backbone((4, 8, 8)), splits.data.num_classes).eval()
    proposals, method = l5.propose(splits.whole_test, s, progress=False)
    attention = l5.locate(classnet, splits.whole_test, proposals, s, progress=False)
    groups = l5.part_groups(classnet, s)
    l5.choose_parts(classnet, splits.whole_test, attention, groups, s, progress=False)
    return s, splits, classnet, attention, method


def test_whole_images_are_the_unflipped_images_with_their_geometry(smoke) -> None:
    s, splits, *_ = smoke
    image, label, box, parts = splits.whole_test[0]
    assert image.shape == (3, s.attention_size, s.attention_size)
    again = splits.whole_test[0]
    assert torch.equal(image, again[0]) and torch.equal(box, again[2])  # never flipped
    assert parts.shape == (len(CUB_PARTS), 3)
    assert len(splits.whole_train) == len(splits.train) and not splits.whole_val.transform.train


def test_locate_and_choose_parts_find_boxes_inside_the_images(smoke) -> None:
    s, splits, classnet, attention, method = smoke
    n, size = len(splits.whole_test), s.attention_size
    assert method in ("selective search", "multi-scale windows")
    assert attention.cams.shape[0] == n and float(attention.cams.max()) <= 1.0
    assert attention.object_boxes.shape == (n, 4) and attention.parts.shape == (n, 2, 4)
    for boxes in (attention.object_boxes, attention.parts.reshape(-1, 4)):
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= size).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert (attention.candidates >= 2).all()
    for kept, proposed in zip(attention.kept, attention.proposals, strict=True):
        assert all((proposed == k).all(dim=1).any() for k in kept)  # kept patches are proposals
    torch.testing.assert_close(attention.probabilities.sum(dim=1), torch.ones(n))
    assert torch.equal(attention.predicted, attention.probabilities.argmax(dim=1))
    saliency = attention.saliency(0, (size, size))
    assert saliency.shape == (size, size)


def test_the_view_of_one_image_holds_everything_found(smoke) -> None:
    _, splits, _, attention, _ = smoke
    view = l5.attention_view(attention, splits.whole_test, 1, splits.data.class_names)
    assert torch.equal(view.parts, attention.parts[1]) and view.groups.tolist() == [0, 1]
    assert view.label == splits.data.class_names[int(attention.labels[1])]
    assert view.iou == pytest.approx(float(attention.iou[1]))


def test_candidate_parts_fall_back_when_too_few_pass(smoke) -> None:
    s, _, _, attention, _ = smoke
    attention.kept[0] = torch.zeros(0, 4)  # nothing kept: the proposals inside the object
    candidates = l5.candidate_parts(attention, 0, s)
    assert len(candidates) >= s.num_parts
    proposed = attention.proposals[0]
    assert all((proposed == c).all(dim=1).any() for c in candidates)


def test_fusion_table_takes_the_settings_folds_and_grid() -> None:
    s = l5.settings("smoke", fusion_step=0.5)
    labels = torch.arange(8) % 2
    scores = dict.fromkeys(("ClassNet", "ObjectNet", "PartNet"), torch.eye(2)[labels])
    table, choice = l5.fusion_table(scores, labels, scores, labels, s)
    assert len(choice.folds) == s.fusion_folds == 2
    assert all(float(w) in (0.0, 0.5, 1.0) for w in choice.weights)  # the settings' grid
    assert (table["test acc"] == 1.0).all() and len(table) == 5


def test_pretraining_runs_in_lab_05s_own_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    lab = l5.start("smoke")
    backbone = l5.pretrained(lab, progress=False)
    assert backbone.line.startswith("backbone: small_vgg pretrained by labkit")
    (run,) = (tmp_path / "runs" / "05_opam" / "smoke" / "source_backbone").iterdir()
    assert backbone.origin == f"labkit pretraining {run.name}"
    assert not (tmp_path / "runs" / "04_bcnn_hbp").exists()  # never lab 04's folder
    classnet = l5.new_classnet(backbone.model, 4)
    history = l5.train_network(classnet, lab.settings.classnet, *l5.load_splits(lab.settings)[1:3],
                               lab, "classnet", {"backbone": backbone.origin},
                               progress=False)  # fmt: skip
    assert len(history) == lab.settings.classnet.num_epochs  # a fixed budget, the last kept
    assert (tmp_path / "runs" / "05_opam" / "smoke" / "classnet").is_dir()
