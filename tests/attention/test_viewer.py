"""Lab 05's attention viewer builds and follows its slider and buttons, no browser needed."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from labkit.attention.figures import AttentionView
from labkit.attention.viewer import attention_caption, attention_viewer, render_attention
from labkit.plots import figure_png

matplotlib.use("Agg")
pytest.importorskip("ipywidgets")


def _attention_view(k: int) -> AttentionView:
    """Image k: a random picture with its true box shifted by k pixels, and a found box."""
    g = torch.Generator().manual_seed(k)
    image = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8, generator=g)
    true_box = torch.tensor([2.0, 3.0, 14.0, 15.0]) + k
    found = torch.tensor([2.0, 3.0, 14.0, 15.0])
    return AttentionView(
        image, object_box=found, true_box=true_box, label=f"00{k}.Bird_{k}", predicted="001.Bird_1"
    )


def _viewer_parts(viewer):
    controls, caption, image = viewer.children
    previous, slider, following = controls.children
    return previous, slider, following, caption, image


def test_render_attention_is_the_plot_without_pyplot():
    open_figures = plt.get_fignums()
    fig = render_attention(_attention_view(0))
    assert [ax.get_title() for ax in fig.axes] == [
        "patches\ncandidates, kept",
        "saliency\nclass activation map",
        "object box\nIoU 1.00",
        "parts\nparts not computed yet",
    ]
    assert plt.get_fignums() == open_figures  # nothing for pyplot to show twice or to leak


def test_attention_caption_names_the_classes_and_the_iou():
    view = _attention_view(1)  # boxes 12 x 12 shifted by one pixel: 121 / 167 in common
    assert attention_caption(view, 1, 3) == (
        "image 1 of 3 (0 to 2): true <b>Bird 1</b>, predicted <b>Bird 1</b> (right); IoU 0.72"
    )
    bare = AttentionView(view.image, label="<b>", iou=0.25)
    assert attention_caption(bare, 0, 1).endswith(
        "true <b>&lt;b&gt;</b>, predicted <b>?</b>; IoU 0.25"
    )


def test_attention_viewer_follows_its_slider_and_buttons():
    views = [_attention_view(k) for k in range(3)]
    viewer = attention_viewer(views, captions=["a.jpg", "b.jpg", "c&d.jpg"])
    previous, slider, following, caption, image = _viewer_parts(viewer)
    assert (slider.description, slider.min, slider.max, slider.value) == ("image", 0, 2, 0)
    first_png, first_caption = bytes(image.value), caption.value
    assert first_png == figure_png(render_attention(views[0]))
    assert first_caption == attention_caption(views[0], 0, 3) + "<br>a.jpg"
    slider.value = 2  # runs the observer, as a browser's drag would
    assert bytes(image.value) == figure_png(render_attention(views[2])) != first_png
    assert caption.value.startswith("image 2 of 3") and caption.value.endswith("<br>c&amp;d.jpg")
    following.click()  # already at the end: stays
    assert slider.value == 2
    previous.click()
    previous.click()
    assert slider.value == 0 and bytes(image.value) == first_png and caption.value == first_caption


def test_attention_viewer_calls_a_function_once_per_image():
    made = []

    def view(i: int) -> AttentionView:
        made.append(i)
        return _attention_view(i)

    viewer = attention_viewer(view, count=5, start=3)
    previous, slider, following, caption, image = _viewer_parts(viewer)
    assert (slider.max, slider.value, made) == (4, 3, [3])
    third = bytes(image.value)
    following.click()
    assert made == [3, 4] and caption.value.startswith("image 4 of 5")
    previous.click()  # drawn before: not made again
    assert made == [3, 4] and bytes(image.value) == third


def test_attention_viewer_refuses_what_it_cannot_show():
    view = _attention_view(0)
    with pytest.raises(ValueError, match="got no views: pass at least one AttentionView"):
        attention_viewer([])
    with pytest.raises(ValueError, match="got a function of the index: pass count="):
        attention_viewer(_attention_view)
    with pytest.raises(ValueError, match="got no views"):
        attention_viewer(_attention_view, count=0)
    with pytest.raises(ValueError, match="count=3 but views holds 1: leave count out"):
        attention_viewer([view], count=3)
    with pytest.raises(ValueError, match=r"start=2 is out of range: the images are 0 to 1"):
        attention_viewer([view, view], start=2)
    with pytest.raises(ValueError, match=r"captions needs one line per image \(2\), got 1"):
        attention_viewer([view, view], captions=["a"])
    with pytest.raises(TypeError, match=r"pass \[view\] for one image"):
        attention_viewer(view)
    with pytest.raises(TypeError, match="view 0 is a str, not a labkit AttentionView"):
        attention_viewer(lambda i: "bird", count=2)
    with pytest.raises(ValueError, match=r"saliency must be \(24, 24\)"):  # the plot's check
        attention_viewer([view._replace(saliency=torch.zeros(7, 7))])
