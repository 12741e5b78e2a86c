"""The OPAM figure: every box drawn where the view puts it, on any image type; None says so."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from labkit.attention.figures import AttentionView, plot_attention
from labkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD

matplotlib.use("Agg")
SIZE = 40  # pixels per side of the test image


def _image() -> torch.Tensor:
    return torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator())


def _normalised(image: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image / 255 - mean) / std  # what a bird dataset returns


def _view(**changes) -> AttentionView:
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(60, 2, generator=g) * 20
    proposals = torch.cat([corners, corners + 4 + torch.rand(60, 2, generator=g) * 15], dim=1)
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    true_parts = torch.zeros(15, 3)
    true_parts[:4] = torch.tensor([[12.0, 14, 1], [20, 22, 1], [30, 9, 0], [25, 30, 1]])
    view = AttentionView(
        image=_normalised(_image()),
        proposals=proposals,
        kept=proposals[[3, 7, 11]],
        saliency=torch.exp(-((xs - 20) ** 2 + (ys - 18) ** 2) / 60),  # (H, W) in [0, 1]
        object_box=torch.tensor([8.0, 6.0, 30.0, 28.0]),
        true_box=torch.tensor([10.0, 5.0, 32.0, 30.0]),
        parts=torch.tensor([[5.0, 6, 15, 16], [18, 20, 28, 30], [2, 3, 9, 10], [20, 1, 35, 12]]),
        groups=torch.tensor([1, 0, 1, 2]),
        true_parts=true_parts,
        label="012.Yellow_headed_Blackbird",
        predicted="013.Bobolink",
    )
    return view._replace(**changes)


def _boxes(ax, gid: str) -> list[tuple[float, float, float, float]]:
    """x1, y1, x2, y2 of the rectangles of one kind (the gid plot_attention gives them)."""
    found = []
    for patch in ax.patches:
        if patch.get_gid() == gid:
            (x, y), w, h = patch.get_xy(), patch.get_width(), patch.get_height()
            found.append(tuple(float(v) for v in (x, y, x + w, y + h)))
    return found


def _rows(boxes) -> list[tuple[float, ...]]:
    return [tuple(row) for row in np.asarray(boxes, dtype=np.float64).tolist()]


def _words(ax) -> str:
    """Everything a panel says: its title and its texts."""
    return " ".join([ax.get_title(), *(t.get_text() for t in ax.texts)])


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def _iou(a, b) -> float:
    """Brute force: count the pixels of each box (x2, y2 exclusive, whole-pixel boxes)."""
    grid = np.zeros((2, SIZE, SIZE), dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate((a, b)):
        grid[k, int(y1) : int(y2), int(x1) : int(x2)] = True
    return (grid[0] & grid[1]).sum() / (grid[0] | grid[1]).sum()


def test_four_panels_with_every_box_where_the_view_puts_it() -> None:
    view = _view()
    fig = plot_attention(view, max_proposals=50)
    assert isinstance(fig, Figure)
    patches, saliency, found, parts = fig.axes
    assert len(fig.axes) == 4
    # (a) the first 50 candidates in grey, all kept patches in colour; the title counts them all
    assert _boxes(patches, "proposal") == _rows(view.proposals[:50])
    assert _boxes(patches, "kept") == _rows(view.kept)
    assert patches.get_title() == "patches\n60 candidates, 3 kept"
    assert _legend(patches) == ["candidates (first 50)", "kept"]
    # (b) the map over the image, on the image's pixels
    image, heat = saliency.images
    np.testing.assert_allclose(heat.get_array(), view.saliency.numpy(), rtol=1e-6)
    assert tuple(heat.get_extent()) == tuple(image.get_extent()) == (0, SIZE, SIZE, 0)
    # (c) the two boxes, and their IoU computed as a pixel count would
    assert _boxes(found, "object box") == _rows(view.object_box[None])
    assert _boxes(found, "true box") == _rows(view.true_box[None])
    assert found.get_title() == f"object box\nIoU {_iou(view.object_box, view.true_box):.2f}"
    assert _legend(found) == ["true box", "found"]
    # (d) one colour per group, the true visible keypoints as dots
    for g, rows in ((0, [1]), (1, [0, 2]), (2, [3])):
        assert _boxes(parts, f"group {g}") == _rows(view.parts[rows])
        colours = {p.get_edgecolor() for p in parts.patches if p.get_gid() == f"group {g}"}
        assert colours == {to_rgba(f"C{g}")}
    assert _legend(parts) == ["group 0", "group 1", "group 2", "true parts"]
    (dots,) = parts.collections
    np.testing.assert_array_equal(dots.get_offsets(), [[12, 14], [20, 22], [25, 30]])
    assert parts.get_title() == "parts\n4 parts in 3 groups"
    # CUB's numbers and underscores left out; "wrong" as the names differ
    assert fig.get_suptitle() == "true: Yellow headed Blackbird    predicted: Bobolink (wrong)"
    plt.close(fig)


def test_a_given_iou_and_names_are_shown_as_given() -> None:
    fig = plot_attention(_view(iou=0.5, label="Bobolink", predicted="013.Bobolink", kept=None))
    assert fig.axes[2].get_title() == "object box\nIoU 0.50"
    assert fig.get_suptitle() == "true: Bobolink    predicted: Bobolink (right)"
    assert fig.axes[0].get_title() == "patches\n60 candidates, kept not computed yet"
    assert _legend(fig.axes[0]) == ["candidates (first 50)"]
    plt.close(fig)


def test_fields_not_computed_yet_say_so() -> None:
    fig = plot_attention(AttentionView(_image()))
    for ax, what in zip(fig.axes, ("patches", "saliency", "object box", "parts"), strict=True):
        assert f"{what}\nnot computed yet" in _words(ax)
        assert not ax.patches and ax.get_legend() is None and len(ax.images) == 1
    assert fig.get_suptitle() == ""  # no names given: no title
    plt.close(fig)
    # parts without groups: one colour; the boxes' IoU without boxes is not computed
    view = _view(groups=None, object_box=None, saliency=None)
    fig = plot_attention(view)
    assert "not computed yet" in _words(fig.axes[1]) and len(fig.axes[1].images) == 1
    assert fig.axes[2].get_title() == "object box\nIoU not computed yet"
    assert _boxes(fig.axes[2], "true box") == _rows(view.true_box[None])
    assert _boxes(fig.axes[3], "group 0") == _rows(view.parts)
    assert _legend(fig.axes[3]) == ["part", "true parts"]
    plt.close(fig)


def test_every_image_type_draws_the_same_pixels() -> None:
    image = _image()
    array = image.permute(1, 2, 0).numpy()  # (H, W, 3) uint8
    drawn = []
    for given in (image, array, array / 255, _normalised(image)):
        fig = plot_attention(_view(image=given))
        drawn.append(np.asarray(fig.axes[0].images[0].get_array(), dtype=np.float64))
        plt.close(fig)
    np.testing.assert_array_equal(drawn[1], drawn[0])
    for pixels in drawn[2:]:  # floats in [0, 1]
        np.testing.assert_allclose(pixels * 255, drawn[0], atol=1e-3)
    grey = image[:1]  # one channel: (1, H, W) tensor, (H, W) and (H, W, 1) arrays, in grey
    for given in (grey, grey[0].numpy(), grey.permute(1, 2, 0).numpy()):
        fig = plot_attention(_view(image=given))
        for ax in fig.axes:
            shown = ax.images[0]
            np.testing.assert_array_equal(shown.get_array(), grey[0].numpy())
            assert shown.get_cmap().name == "gray" and shown.get_clim() == (0, 255)
        plt.close(fig)


def test_it_draws_on_given_axes() -> None:
    fig, axes = plt.subplots(2, 4)
    assert plot_attention(_view(), axes=axes[1]) is fig
    assert not any(ax.patches or ax.images for ax in axes[0])
    assert axes[1][0].get_title().startswith("patches")
    plt.close(fig)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": torch.zeros(2, SIZE, SIZE)}, r"image must be \(3, H, W\) or \(1, H, W\)"),
        ({"image": np.zeros((SIZE, SIZE, 2))}, r"need an image \(H, W, 3\) array"),
        ({"proposals": torch.zeros(5, 5)}, r"proposals must be \(n, 4\) \(boxes x1, y1, x2, y2\)"),
        ({"kept": torch.zeros(4)}, r"kept must be \(n, 4\)"),
        ({"saliency": torch.zeros(14, 14)}, rf"saliency must be \({SIZE}, {SIZE}\) \(the image's"),
        ({"object_box": torch.zeros(2, 2)}, r"object_box must be \(4,\) \(box x1, y1, x2, y2\)"),
        ({"true_box": torch.zeros(5)}, r"true_box must be \(4,\)"),
        ({"groups": torch.zeros(3, dtype=torch.long)}, r"groups must be \(4,\) \(one int per"),
        ({"groups": torch.tensor([0, 0.5, 1, 1])}, r"groups must be whole numbers, got \[0.0, 0.5"),
        ({"parts": None}, "groups was given without parts: give both or neither"),
        ({"true_parts": torch.zeros(15, 2)}, r"true_parts must be \(n, 3\) \(x, y, visible\)"),
    ],
)
def test_a_bad_shape_is_refused_by_name(changes: dict, message: str) -> None:
    open_figures = plt.get_fignums()
    with pytest.raises(ValueError, match=message):
        plot_attention(_view(**changes))
    assert plt.get_fignums() == open_figures  # a refusal leaves no empty figure behind


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="pass four axes, got 3"):
        plot_attention(_view(), axes=plt.subplots(1, 3)[1])
    plt.close("all")
    with pytest.raises(ValueError, match="max_proposals must be an int >= 0"):
        plot_attention(_view(), max_proposals=-1)
    with pytest.raises(TypeError, match="need a labkit.attention.figures.AttentionView, got tuple"):
        plot_attention(tuple(_view()))
