"""Lab 03's error browser builds and follows its slider and buttons, no browser needed."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from error_answers import answered_error_table

from labkit.triplets.browser import error_browser, render_error

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
