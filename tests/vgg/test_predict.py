"""labkit.vgg.predict: one image's class and probability, and its figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from labkit.vgg.predict import Prediction, plot_prediction, predict

CLASS_NAMES = ("red", "green", "blue")
TRANSFORM = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])  # (3, H, W)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _model(scale: float = 2.0) -> nn.Module:
    """Channel means (3,) times `scale`: a pure red image gives logits (scale, 0, 0)."""
    linear = nn.Linear(3, 3)
    with torch.no_grad():
        linear.weight.copy_(scale * torch.eye(3))
        linear.bias.zero_()
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), linear)


def _image(colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (8, 6), colour)


@pytest.mark.parametrize(
    ("colour", "label"), [((255, 0, 0), 0), ((0, 255, 0), 1), ((0, 0, 255), 2)]
)
def test_known_argmax_and_softmax(colour: tuple[int, int, int], label: int) -> None:
    prediction = predict(_model(), _image(colour), CLASS_NAMES, TRANSFORM)
    expected = torch.softmax(2.0 * torch.eye(3, dtype=torch.float64)[label], dim=0)
    assert isinstance(prediction, Prediction)
    assert (prediction.label, prediction.name) == (label, CLASS_NAMES[label])
    assert prediction.probabilities.shape == (3,)
    torch.testing.assert_close(prediction.probabilities.double(), expected)
    assert prediction.probability == pytest.approx(float(expected[label]), abs=1e-6)


def test_path_and_other_modes(tmp_path: Path) -> None:
    path = tmp_path / "leaf.png"
    _image((0, 255, 0)).save(path)
    from_path = predict(_model(), path, CLASS_NAMES, TRANSFORM)
    from_str = predict(_model(), str(path), CLASS_NAMES, TRANSFORM)
    assert from_path.label == from_str.label == 1
    grey = predict(_model(), Image.new("L", (5, 5), 255), CLASS_NAMES, TRANSFORM)  # as RGB
    torch.testing.assert_close(grey.probabilities, torch.full((3,), 1 / 3))


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    for path in (bad, tmp_path / "missing.jpg"):
        with pytest.raises(ValueError, match=path.name):
            predict(_model(), path, CLASS_NAMES, TRANSFORM)


@pytest.mark.parametrize("training", [True, False])
def test_training_flags_restored(training: bool) -> None:
    model = _model()
    model.train(training)
    model[0].train(not training)  # a submodule with its own flag
    first = predict(model, _image((255, 0, 0)), CLASS_NAMES, TRANSFORM)
    second = predict(model, _image((255, 0, 0)), CLASS_NAMES, TRANSFORM)
    torch.testing.assert_close(first.probabilities, second.probabilities)  # dropout off
    assert model.training is training and model[0].training is (not training)
    assert all(m.training is training for m in list(model)[1:])


def test_no_gradients_recorded() -> None:
    prediction = predict(_model(), _image((255, 0, 0)), CLASS_NAMES, TRANSFORM)
    assert not prediction.probabilities.requires_grad


def test_class_name_count_mismatch() -> None:
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        predict(_model(), _image((255, 0, 0)), CLASS_NAMES[:2], TRANSFORM)


def test_transform_must_give_an_image_tensor() -> None:
    with pytest.raises(ValueError, match=r"\(3, H, W\) tensor"):
        predict(_model(), _image((255, 0, 0)), CLASS_NAMES, lambda im: im)


def test_plot_prediction_title_and_bars(tmp_path: Path) -> None:
    image = _image((0, 0, 255))
    prediction = predict(_model(), image, CLASS_NAMES, TRANSFORM)
    fig = plot_prediction(image, prediction, top=2, class_names=CLASS_NAMES)
    assert isinstance(fig, Figure)
    image_ax, bar_ax = fig.axes
    assert image_ax.get_title() == f"class: blue, probability: {prediction.probability:.3f}"
    assert image_ax.get_title() == "class: blue, probability: 0.787"  # e^2 / (e^2 + 2)
    assert len(bar_ax.patches) == 2
    assert [t.get_text() for t in bar_ax.get_yticklabels()][0] == "blue"
    assert bar_ax.patches[0].get_width() == pytest.approx(prediction.probability)
    path = tmp_path / "leaf.png"
    image.save(path)
    fig = plot_prediction(path, prediction, top=10)  # at most every class; names unknown
    bars = fig.axes[1]
    assert len(bars.patches) == 3
    assert [t.get_text() for t in bars.get_yticklabels()][0] == "blue"
    assert {t.get_text() for t in bars.get_yticklabels()} >= {"class 0", "class 1"}


def test_plot_prediction_into_given_axes() -> None:
    image = _image((255, 0, 0))
    prediction = predict(_model(), image, CLASS_NAMES, TRANSFORM)
    fig, axes = plt.subplots(1, 2)
    assert plot_prediction(image, prediction, ax=axes[1]) is fig
    assert axes[1].get_title().startswith("class: red, probability: ")
    assert len(axes[1].child_axes) == 1 and len(axes[1].child_axes[0].patches) == 3


def test_plot_prediction_checks_arguments() -> None:
    image = _image((255, 0, 0))
    prediction = predict(_model(), image, CLASS_NAMES, TRANSFORM)
    with pytest.raises(ValueError, match="top must be at least 1"):
        plot_prediction(image, prediction, top=0)
    with pytest.raises(ValueError, match="2 class names for a prediction over 3"):
        plot_prediction(image, prediction, class_names=CLASS_NAMES[:2])
