"""Tests for labkit.widgets: the error browser builds and follows its slider, no browser needed."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from error_answers import answered_error_table

from labkit.plots import AttentionView
from labkit.widgets import (
    _png,
    attention_caption,
    attention_viewer,
    error_browser,
    receptive_field_explorer,
    render_attention,
    render_error,
    render_receptive_field,
    unit_caption,
)

matplotlib.use("Agg")
pytest.importorskip("ipywidgets")


def _errors():
    g = torch.Generator().manual_seed(0)
    train_images = torch.randint(0, 256, (9, 3, 8, 8), dtype=torch.uint8, generator=g)
    test_images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(6) % 3
    preds = (labels + torch.tensor([1, 0, 1, 0, 2, 0])) % 3  # errors at test 0, 2, 4
    test, train, train_labels = (
        torch.randn(6, 4, generator=g),
        torch.randn(9, 4, generator=g),
        torch.arange(9) % 3,
    )
    table = answered_error_table(test, labels, preds, train, train_labels)
    return table, test_images, train_images


def _parts(browser):
    controls, caption, image = browser.children
    previous, slider, following = controls.children
    return previous, slider, following, caption, image


def test_render_error_is_one_row_of_six_images():
    errors, test_images, train_images = _errors()
    fig = render_error(errors, 1, test_images, train_images, ["a", "b", "c"])
    assert len(fig.axes) == 6 and fig.axes[0].get_title().startswith("test #2")


def test_browser_follows_slider_and_buttons():
    errors, test_images, train_images = _errors()
    browser = error_browser(errors, test_images, train_images)
    previous, slider, following, caption, image = _parts(browser)
    # the slider counts as the caption does: error 1 of 3 .. error 3 of 3
    assert (slider.min, slider.max, slider.value) == (1, len(errors), 1) and len(errors) == 3
    first_png, first_caption = bytes(image.value), caption.value
    assert first_png.startswith(b"\x89PNG") and "test image #0" in first_caption
    assert first_caption.startswith("error 1 of 3")
    slider.value = 3  # runs the observer, as a browser's drag would
    assert bytes(image.value) != first_png and "test image #4" in caption.value
    assert caption.value.startswith("error 3 of 3")
    following.click()  # already at the end: stays
    assert slider.value == 3
    previous.click()
    previous.click()
    assert slider.value == 1 and bytes(image.value) == first_png and caption.value == first_caption


def test_browser_without_errors_says_so():
    errors, test_images, train_images = _errors()
    browser = error_browser(errors.iloc[:0], test_images, train_images)
    assert "no errors" in browser.value


# ---------------------------------------------------------------- receptive-field explorer


def _receptive_field_case():
    from torch import nn

    from labkit.vgg.receptive_field import receptive_field_table

    chain = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )  # fmt: skip
    image = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator())
    return image, receptive_field_table(chain, 16)  # 16, 16, 8, 8, 8, 4 units per side


def _explorer_parts(explorer):
    controls, caption, image, details = explorer.children
    layer, row, col = controls.children
    return layer, row, col, caption, image, details


def test_render_receptive_field_is_the_plot_without_pyplot():
    import matplotlib.pyplot as plt

    image, table = _receptive_field_case()
    open_figures = plt.get_fignums()
    fig = render_receptive_field(image, table, "5", 1, 2)
    (ax,) = fig.axes
    assert ax.get_title() == "5: unit (1, 2) of 4x4, receptive field 10 px, jump 4 px"
    assert plt.get_fignums() == open_figures  # nothing for pyplot to show twice or to leak


def test_explorer_offers_the_convolutions_and_poolings_with_labelled_controls():
    image, table = _receptive_field_case()
    explorer = receptive_field_explorer(image, table)
    layer, row, col, caption, picture, details = _explorer_parts(explorer)
    assert [label for _, label in layer.options] == ["0", "2", "3", "5"]  # no ReLU rows
    assert layer.options[1][0] == "2 (MaxPool2d, 8x8)"
    assert (layer.description, row.description, col.description) == ("layer", "row", "col")
    # opens on the last layer's centre unit
    assert (layer.value, row.value, col.value, row.max, col.max) == ("5", 2, 2, 3, 3)
    assert bytes(picture.value) == _png(render_receptive_field(image, table, "5", 2, 2))
    assert caption.value == unit_caption(table, "5", 2, 2, 16, 16)
    assert "centre at x 10, y 10; field x 5 to 15, y 5 to 15 px; 100% of it inside" in caption.value
    assert "<td>MaxPool2d</td>" in details.value and "<td>10</td>" in details.value
    chosen = receptive_field_explorer(image, table, layers=["1", "3"])
    assert [label for _, label in _explorer_parts(chosen)[0].options] == ["1", "3"]


def test_explorer_follows_its_controls(monkeypatch):
    import labkit.widgets

    image, table = _receptive_field_case()
    drawn = []

    def counted(*args):
        drawn.append(args[2:])
        return render_receptive_field(*args)

    monkeypatch.setattr(labkit.widgets, "render_receptive_field", counted)
    explorer = receptive_field_explorer(image, table)
    layer, row, col, caption, picture, details = _explorer_parts(explorer)
    first_png = bytes(picture.value)
    row.value = 3  # as a browser's drag would: the observer redraws
    assert bytes(picture.value) != first_png and caption.value.startswith("unit (3, 2) of layer")
    assert "y 9 to 19 px; 70% of it inside the image" in caption.value  # rows 9 to 15 of 16
    old_row = row
    layer.value = "0"  # 16 x 16 units: new sliders with larger maxima, the values kept
    layer, row, col = _explorer_parts(explorer)[:3]
    assert row is not old_row  # a fresh slider: the browser's End key reaches its maximum
    assert (row.max, col.max, row.value, col.value) == (15, 15, 3, 2)
    assert caption.value.startswith("unit (3, 2) of layer <b>0</b>")
    assert "<td>Conv2d</td>" in details.value and "MaxPool2d" not in details.value
    old_row.value = 1  # the old slider is out of the explorer: it changes nothing
    assert caption.value.startswith("unit (3, 2) of layer <b>0</b>")
    row.value, col.value = 12, 15
    layer.value = "2"  # 8 x 8 units: both values clamped to 7
    layer, row, col = _explorer_parts(explorer)[:3]
    assert (row.max, col.max, row.value, col.value) == (7, 7, 7, 7)
    assert caption.value.startswith("unit (7, 7) of layer <b>2</b>")
    assert bytes(picture.value) == _png(render_receptive_field(image, table, "2", 7, 7))
    # one drawing per state shown: none for the sliders the layer change made
    assert drawn == [("5", 2, 2), ("5", 3, 2), ("0", 3, 2), ("0", 12, 2), ("0", 12, 15),
                     ("2", 7, 7)]  # fmt: skip
    layer.value = "5"  # 4 x 4 units: (7, 7) clamped to (3, 3), drawn
    layer, row, col = _explorer_parts(explorer)[:3]
    assert (row.value, col.value) == (3, 3) and drawn[-1] == ("5", 3, 3)
    col.value = 2
    row.value = 2
    assert bytes(picture.value) == first_png  # (5, 3, 2) and (5, 2, 2) came from the cache
    assert len(drawn) == 7


def test_explorer_refuses_an_image_of_another_size_and_unknown_layers():
    image, table = _receptive_field_case()
    with pytest.raises(ValueError, match="does not fit a 20 x 20 image"):
        receptive_field_explorer(torch.zeros(3, 20, 20, dtype=torch.uint8), table)
    with pytest.raises(ValueError, match=r"layers \['conv9'\] are not rows of the table"):
        receptive_field_explorer(image, table, layers=["0", "conv9"])


# ---------------------------------------------------------------- attention viewer


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
    import matplotlib.pyplot as plt

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
    assert first_png == _png(render_attention(views[0]))
    assert first_caption == attention_caption(views[0], 0, 3) + "<br>a.jpg"
    slider.value = 2  # runs the observer, as a browser's drag would
    assert bytes(image.value) == _png(render_attention(views[2])) != first_png
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
