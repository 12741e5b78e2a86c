"""The handout's `predict.py`: classify one image and draw "class: tulips, probability: 0.973"
over it, with the top classes' probabilities beside it.

Used in: 01_vgg (predicting one image with the fine-tuned VGG).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from labkit.data.images import open_rgb, to_rgb8
from labkit.training.model_utils import eval_mode

PICK_ANOTHER = "check the path or choose another image"
TITLE_WIDTH, BAR_LABEL_WIDTH = 44, 22  # characters per line before a long name wraps


class Prediction(NamedTuple):
    """One image's prediction: the class index and name, its probability, and every class's
    probability (num_classes,) on the CPU."""

    label: int
    name: str
    probability: float
    probabilities: torch.Tensor


def _rgb(image: Image.Image | str | os.PathLike) -> Image.Image:
    """A path opened as RGB (errors naming the file), or a PIL image of any mode as RGB."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else Image.fromarray(to_rgb8(image))
    return open_rgb(image, remedy=PICK_ANOTHER)[0]


def predict(
    model: nn.Module,
    image: Image.Image | str | os.PathLike,
    class_names: Sequence[str],
    transform: Callable[[Image.Image], torch.Tensor],
) -> Prediction:
    """Classify one image with `model` in eval mode (its training flags are restored after).

    Args:
        model: a classifier returning logits (1, num_classes); run on its own device.
        image: a PIL image or an image file (read as RGB).
        class_names: names by class index, e.g. from `read_class_index("class_idx.json")`.
        transform: PIL image -> (3, H, W) tensor, the evaluation transform of training.
    Raises:
        ValueError: an unreadable file (named), a transform that does not give (3, H, W), or
            `class_names` whose count differs from the model's outputs.
    """
    x = transform(_rgb(image))
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"transform must turn the image into a (3, H, W) tensor, got {shape}")
    weight = next(model.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    with eval_mode(model), torch.no_grad():
        logits = model(x.unsqueeze(0).to(device))  # (1, num_classes)
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ValueError(f"model must return logits (1, num_classes), got {tuple(logits.shape)}")
    if logits.shape[1] != len(class_names):
        raise ValueError(
            f"the model has {logits.shape[1]} outputs but {len(class_names)} class names were "
            "given; pass the class_idx.json written with this model's training data"
        )
    probabilities = torch.softmax(logits[0].float(), dim=0).cpu()
    label = int(probabilities.argmax())
    return Prediction(label, str(class_names[label]), float(probabilities[label]), probabilities)


def plot_prediction(
    image: Image.Image | str | os.PathLike,
    prediction: Prediction,
    *,
    top: int = 3,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The image titled "class: <name>, probability: 0.973", and a bar chart of the `top`
    classes' probabilities beside it (the predicted class highlighted). Names are drawn with
    underscores as spaces and long ones wrapped.

    Args:
        image: the image that was classified (a PIL image or its file).
        prediction: from `predict`.
        top: how many classes the bar chart shows (at most all of them).
        class_names: names for the bars (as given to `predict`); without them the bars other
            than the predicted class show "class <index>".
        ax: draw the image here and the bars in an inset to its right; default a new figure.
    Used in: 01_vgg.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    num_classes = len(prediction.probabilities)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"{len(class_names)} class names for a prediction over {num_classes} classes"
        )
    if ax is None:
        fig, (ax, bar_ax) = plt.subplots(
            1, 2, figsize=(7.5, 3.6), width_ratios=(3, 2), layout="constrained"
        )
    else:
        fig = ax.get_figure()
        bar_ax = ax.inset_axes((1.35, 0.1, 0.6, 0.8))  # room on its left for the names
    ax.imshow(np.asarray(_rgb(image)))
    title = f"class: {_shown(prediction.name)}, probability: {prediction.probability:.3f}"
    ax.set_title(textwrap.fill(title, TITLE_WIDTH), fontsize=10)
    ax.axis("off")

    probabilities = prediction.probabilities.detach().cpu().float()
    values, labels = probabilities.topk(min(top, num_classes))
    labels = labels.tolist()
    names = [
        textwrap.fill(_shown(_class_name(prediction, label, class_names)), BAR_LABEL_WIDTH)
        for label in labels
    ]
    colors = ["tab:orange" if label == prediction.label else "tab:blue" for label in labels]
    rows = np.arange(len(labels))
    bar_ax.barh(rows, values.numpy(), color=colors)
    bar_ax.set_yticks(rows, names, fontsize=8)
    bar_ax.invert_yaxis()  # the most probable class on top
    bar_ax.set_xlim(0, 1)
    bar_ax.set_xlabel("probability")
    for row, value in zip(rows, values.tolist(), strict=True):
        inside = value > 0.75  # the number inside a long bar, after a short one
        x, ha, color = (value - 0.02, "right", "white") if inside else (value + 0.02, "left", "k")
        bar_ax.text(x, row, f"{value:.3f}", ha=ha, va="center", color=color, fontsize=8)
    bar_ax.set_title(f"top {len(labels)}", fontsize=9)
    return fig


def _shown(name: str) -> str:
    """A class name as drawn: underscores as spaces, so that long names (the synthetic birds'
    `003.Orange_short_bill_...`) wrap; "tulips" is unchanged."""
    return name.replace("_", " ")


def _class_name(prediction: Prediction, label: int, class_names: Sequence[str] | None) -> str:
    """`class_names[label]`, else the prediction's own name or "class <label>"."""
    if class_names is not None:
        return str(class_names[label])
    return prediction.name if label == prediction.label else f"class {label}"
