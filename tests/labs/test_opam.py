"""Lab 05's module: settings per profile, the whole images, object and part attention on the
smoke profile's synthetic birds with a small untrained ClassNet, what the parts cover, fusion."""

from __future__ import annotations

import pytest
import torch

from labkit.data.synthbirds import CUB_PARTS
from labkit.labs import opam as l5
from labkit.labs.bcnn_hbp import settings as lab04_settings
from labkit.models.backbones import small_vgg_backbone


def test_profiles() -> None:
    full, cpu = l5.settings("full"), l5.settings("cpu")
    assert (full.backbone, full.attention_size, full.num_parts) == ("vgg16", 448, 2)
    lab04 = lab04_settings("cpu")  # one pretraining serves labs 04 and 05
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


def _attention(parts: torch.Tensor, true_parts: torch.Tensor) -> l5.Attention:
    n = len(parts)
    return l5.Attention(
        labels=torch.zeros(n, dtype=torch.long), probabilities=torch.ones(n, 1),
        predicted=torch.zeros(n, dtype=torch.long), cams=torch.zeros(n, 2, 2),
        activations=torch.zeros(n, 2, 2), maps=torch.zeros(n, 2, 2),
        object_boxes=torch.zeros(n, 4), true_boxes=torch.zeros(n, 4), true_parts=true_parts,
        proposals=[torch.zeros(0, 4)] * n, kept=[torch.zeros(0, 4)] * n, parts=parts,
    )  # fmt: skip


def test_parts_cover_and_group_contents_count_true_parts_inside_each_slot() -> None:
    parts = torch.tensor([[[0.0, 0, 10, 10], [10, 10, 20, 20]],
                          [[0.0, 0, 5, 5], [30, 30, 40, 40]]])  # fmt: skip
    true_parts = torch.tensor([[[2.0, 2, 1], [15, 15, 1], [15, 15, 0]],
                               [[2.0, 2, 1], [15, 15, 1], [35, 35, 0]]])  # fmt: skip
    attention = _attention(parts, true_parts)
    cover = l5.parts_cover(attention)
    assert cover["parts holding a true part"].tolist() == [2, 1]
    assert cover["any part"].tolist() == [True, True]
    assert cover["every part"].tolist() == [True, False]  # the invisible one does not count
    contents = l5.group_contents(attention, ("beak", "tail", "leg"))
    assert contents.loc["beak"].tolist() == [1.0, 0.0]
    assert contents.loc["tail"].tolist() == [0.0, 0.5]
    assert contents.loc["leg"].tolist() == [0.0, 0.0]


def test_candidate_parts_fall_back_when_too_few_pass(smoke) -> None:
    s, _, _, attention, _ = smoke
    attention.kept[0] = torch.zeros(0, 4)  # nothing kept: the proposals inside the object
    candidates = l5.candidate_parts(attention, 0, s)
    assert len(candidates) >= s.num_parts
    proposed = attention.proposals[0]
    assert all((proposed == c).all(dim=1).any() for c in candidates)


def test_localised_share_counts_the_boxes_with_iou_of_at_least_a_half() -> None:
    maps = torch.zeros(3, 10, 10)
    maps[0, 2:6, 3:7] = 1.0  # the box (3, 2, 7, 6): the true box
    maps[1, 0:2, 0:2] = 1.0  # far from its true box
    maps[2, 2:6, 3:7], maps[2, 2, 3] = 0.9, 0.1  # one pixel below the threshold: same box
    true_boxes = torch.tensor([[3.0, 2, 7, 6], [5, 5, 10, 10], [3, 2, 7, 6]])
    assert l5.localised_share(maps, true_boxes, 0.5) == pytest.approx(2 / 3)
    assert l5.localised_share(maps[:2], true_boxes[:2], 0.5) == 0.5


def test_fusion_table_compares_networks_and_both_fusions() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (60,), generator=generator)
    right = torch.nn.functional.one_hot(labels, 5).float() * 0.6 + 0.08
    noise = torch.rand(60, 5, generator=generator).softmax(dim=1)
    scores = {"ClassNet": noise, "ObjectNet": noise.flip(0), "PartNet": right}
    table, choice = l5.fusion_table(scores, labels, scores, labels, l5.settings("smoke"))
    assert list(table.index) == ["ClassNet", "ObjectNet", "PartNet", "fusion, authors' weights",
                                 "fusion, cross-validated weights"]  # fmt: skip
    assert table.loc["PartNet", "test acc"] == 1.0
    assert table.loc["fusion, cross-validated weights", "test acc"] == 1.0
    assert table.loc["fusion, authors' weights", "weights (ClassNet, ObjectNet, PartNet)"] == (
        0.5, 0.3, 0.2,
    )  # fmt: skip
    assert len(choice.folds) == l5.settings("smoke").fusion_folds


def test_a_res2net_serves_as_classnet_for_class_activation_maps() -> None:
    from labkit.attention.saliency import captured_output, class_activation_maps
    from labkit.models.res2net import res2net

    torch.manual_seed(0)
    model = res2net(num_classes=4).eval()  # the narrow Res2Net: 26w x 4s, base width 16
    feature_layer, classifier = l5.cam_layers(model)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), captured_output(feature_layer) as maps:
        logits = model(images)
    cams = class_activation_maps(maps[-1], classifier.weight, logits.argmax(dim=1))
    picked = logits.max(dim=1).values - classifier.bias[logits.argmax(dim=1)]
    torch.testing.assert_close(cams.mean(dim=(1, 2)), picked, rtol=1e-4, atol=1e-5)
    assert isinstance(l5.last_convolution(model), torch.nn.Conv2d)
    with pytest.raises(TypeError, match="no global-average-pool-plus-linear head"):
        l5.cam_layers(torch.nn.Linear(2, 2))
