"""Patch proposals: selective search boxes, the multi-scale fall-back, and choosing between them."""

import sys

import numpy as np
import pytest
import torch

from labkit.attention import proposals
from labkit.attention.proposals import (
    MULTISCALE,
    SELECTIVE_SEARCH,
    multiscale_boxes,
    propose_patches,
    selective_search_available,
    selective_search_boxes,
)
from labkit.data.synthbirds import draw_bird, species_list
from labkit.data.transforms import normalize_imagenet


@pytest.fixture(scope="module")
def bird():
    """A 112 px synthetic bird (PIL image)."""
    image, _, _ = draw_bird(species_list("birds", 2)[1], np.random.default_rng(3), 112)
    return image


@pytest.fixture
def ximgproc():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "ximgproc"):
        pytest.skip("OpenCV without its contrib module (cv2.ximgproc)")
    return cv2


def _assert_boxes_in(boxes: torch.Tensor, height: int, width: int) -> None:
    assert boxes.dtype == torch.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all()
    assert (boxes[:, 3] <= height).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    assert len(torch.unique(boxes, dim=0)) == len(boxes)


def test_multiscale_windows_slide_edge_to_edge():
    boxes = multiscale_boxes(100, 100, scales=(0.5,), aspect_ratios=(1.0,), stride_fraction=0.5)
    expected = [(x, y, x + 50, y + 50) for y in (0, 25, 50) for x in (0, 25, 50)]
    torch.testing.assert_close(boxes, torch.tensor(expected, dtype=torch.float32))
    wide = multiscale_boxes(60, 100, scales=(1.0,), aspect_ratios=(1.0,), stride_fraction=0.25)
    starts = [0, 13, 27, 40]  # ceil(40 / 15) = 3 steps of 13.3 px, rounded
    expected = [(x, 0, x + 60, 60) for x in starts]
    torch.testing.assert_close(wide, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize("size", [(112, 112), (90, 160), (256, 200)])
def test_multiscale_default_windows_lie_inside_at_every_scale(size):
    height, width = size
    boxes = multiscale_boxes(height, width)
    _assert_boxes_in(boxes, height, width)
    sides = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()
    short = min(height, width)
    for scale in (0.3, 0.45, 0.6, 0.75, 0.9):  # squares of every scale, and a corner of each
        square = (boxes[:, 2] - boxes[:, 0] == boxes[:, 3] - boxes[:, 1]) & (
            (sides - scale * short).abs() <= 1
        )
        assert square.any() and (boxes[square, :2] == 0).all(dim=1).any()
    torch.testing.assert_close(boxes, multiscale_boxes(height, width))


def test_multiscale_max_patches_keeps_an_even_spread():
    full = multiscale_boxes(112, 112)
    some = multiscale_boxes(112, 112, max_patches=20)
    assert len(some) == 20 and len(full) > 200
    rows = [int((full == box).all(dim=1).nonzero()) for box in some]
    assert rows[0] == 0 and rows[-1] == len(full) - 1 and rows == sorted(rows)
    large = (some[:, 2] - some[:, 0]) * (some[:, 3] - some[:, 1]) > 0.5 * 112 * 112
    assert large.any() and (~large).any()  # small and large windows both kept
    assert torch.equal(multiscale_boxes(112, 112, max_patches=10_000), full)


def test_multiscale_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match=r"scales .* \(0, 1\], got \(0.5, 1.5\)"):
        multiscale_boxes(50, 50, scales=(0.5, 1.5))
    with pytest.raises(ValueError, match="aspect_ratios must be positive, got"):
        multiscale_boxes(50, 50, aspect_ratios=(0.0,))
    with pytest.raises(ValueError, match="stride_fraction .* got 0"):
        multiscale_boxes(50, 50, stride_fraction=0)
    with pytest.raises(ValueError, match="max_patches must be at least 1, got 0"):
        multiscale_boxes(50, 50, max_patches=0)
    with pytest.raises(ValueError, match="0 x 50"):
        multiscale_boxes(0, 50)


def test_selective_search_boxes_lie_inside_and_are_whole_pixels(ximgproc, bird):
    boxes = selective_search_boxes(bird, max_patches=1000, min_size=10)
    _assert_boxes_in(boxes, 112, 112)
    assert len(boxes) >= 20
    assert torch.equal(boxes, boxes.round())
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 10).all()
    larger = selective_search_boxes(bird, max_patches=1000, min_size=30)
    assert 0 < len(larger) < len(boxes)
    assert all((boxes == box).all(dim=1).any() for box in larger)  # the same boxes, fewer


def test_selective_search_is_deterministic_and_keeps_its_ranking(ximgproc, bird):
    first = selective_search_boxes(bird, max_patches=1000)
    other, _, _ = draw_bird(species_list("birds", 1)[0], np.random.default_rng(0), 80)
    selective_search_boxes(other, max_patches=1000)  # calls in between change nothing
    assert torch.equal(selective_search_boxes(bird, max_patches=1000), first)
    assert torch.equal(selective_search_boxes(bird, max_patches=7), first[:7])
    quality = selective_search_boxes(bird, max_patches=1000, mode="quality")
    assert len(quality) > len(first)
    assert torch.equal(selective_search_boxes(bird, max_patches=1000, mode="quality"), quality)


def test_without_a_seedable_c_library_the_same_boxes_come_in_a_fixed_order(
    ximgproc, bird, monkeypatch
):
    ranked = selective_search_boxes(bird, max_patches=1000)
    monkeypatch.setattr(proposals, "_seed_c_rand", lambda seed: False)
    shuffled = selective_search_boxes(bird, max_patches=1000)
    assert torch.equal(selective_search_boxes(bird, max_patches=1000), shuffled)
    assert torch.equal(torch.unique(shuffled, dim=0), torch.unique(ranked, dim=0))


def test_selective_search_takes_arrays_pil_images_and_normalised_tensors(ximgproc, bird):
    boxes = selective_search_boxes(bird, max_patches=50)
    assert torch.equal(selective_search_boxes(np.asarray(bird), max_patches=50), boxes)
    tensor = normalize_imagenet(bird)  # (3, H, W) as CubDataset returns it
    assert torch.equal(selective_search_boxes(tensor, max_patches=50), boxes)


def test_selective_search_restores_opencv_threads(ximgproc, bird):
    before = ximgproc.getNumThreads()
    ximgproc.setNumThreads(2)
    try:
        selective_search_boxes(bird, max_patches=5)
        assert ximgproc.getNumThreads() == 2
    finally:
        ximgproc.setNumThreads(before)


def test_selective_search_bad_arguments(ximgproc, bird):
    with pytest.raises(ValueError, match="unknown selective search mode 'slow'"):
        selective_search_boxes(bird, max_patches=5, mode="slow")
    with pytest.raises(ValueError, match="min_size must be at least 1 pixel, got 0"):
        selective_search_boxes(bird, max_patches=5, min_size=0)
    with pytest.raises(ValueError, match=r"uint8 RGB array \(H, W, 3\), got float64"):
        selective_search_boxes(np.zeros((8, 8, 3)), max_patches=5)
    with pytest.raises(ValueError, match=r"\(3, H, W\), got \(8, 8\)"):
        selective_search_boxes(torch.zeros(8, 8), max_patches=5)


def test_auto_uses_selective_search_when_opencv_is_there(ximgproc, bird):
    proposals = propose_patches(bird, max_patches=30)
    assert selective_search_available() and proposals.method == SELECTIVE_SEARCH
    assert torch.equal(proposals.boxes, selective_search_boxes(bird, max_patches=30))
    forced = propose_patches(bird, max_patches=30, method="multiscale")
    assert forced.method == MULTISCALE
    assert torch.equal(forced.boxes, multiscale_boxes(112, 112, max_patches=30))


def test_without_opencv_auto_falls_back_and_selective_search_names_the_remedy(monkeypatch, bird):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    assert not selective_search_available()
    proposals = propose_patches(bird, max_patches=40)
    assert proposals.method == MULTISCALE and len(proposals.boxes) == 40
    _assert_boxes_in(proposals.boxes, 112, 112)
    tensor = normalize_imagenet(bird.crop((0, 0, 100, 70)))  # (3, 70, 100)
    _assert_boxes_in(propose_patches(tensor, max_patches=40).boxes, 70, 100)
    with pytest.raises(ImportError, match="pip install opencv-contrib-python-headless"):
        propose_patches(bird, max_patches=40, method="selective_search")


def test_propose_patches_bad_arguments(bird):
    with pytest.raises(ValueError, match="unknown proposal method 'edge_boxes'"):
        propose_patches(bird, max_patches=5, method="edge_boxes")
    with pytest.raises(ValueError, match="max_patches must be at least 1, got 0"):
        propose_patches(bird, max_patches=0, method="multiscale")
    with pytest.raises(ValueError, match="PIL image or a"):
        propose_patches([[0, 0]], max_patches=5, method="multiscale")
