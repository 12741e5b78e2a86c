"""Lab 05's figure: one image through OPAM in four panels (candidate and kept patches, saliency,
object box against the true box, the chosen parts by group), from an `AttentionView`.

The attention viewer (`labkit.attention.viewer`) browses these figures.

Used in: 05_opam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torchvision.ops import box_iou

from labkit.plots import display_array

__all__ = ["AttentionView", "plot_attention"]


class AttentionView(NamedTuple):
    """What `plot_attention` draws for one image; a field left None shows "not computed yet".

    Boxes are float x1, y1, x2, y2 in pixels of the image (x2, y2 exclusive), as tensors on the
    CPU or numpy arrays.

    Fields:
        image: (3, H, W) ImageNet-normalised float tensor (a bird dataset's image), (3, H, W)
            uint8 tensor, (H, W, 3) uint8 or [0, 1] float array, or one channel ((1, H, W)
            tensor, (H, W) array), shown in grey.
        proposals: (P, 4) candidate patches, best first: the first `max_proposals` are drawn.
        kept: (K, 4) the patches the CNN filter kept.
        saliency: (H, W) map in [0, 1] (a class activation map, say), the image's size.
        object_box: (4,) the box found from the saliency; true_box: (4,) the annotated box.
        iou: IoU of the two boxes; None computes it from them.
        parts: (n, 4) the chosen part patches; groups: (n,) int, each part's group.
        true_parts: (15, 3) the annotated part keypoints x, y, visible (1 or 0).
        label, predicted: the true and the predicted class name ("017.Cardinal" or "Cardinal").
        saliency_name: what the saliency map is, for its panel's title.
    Used in: 05_opam (`labkit.attention.viewer.attention_viewer` browses them).
    """

    image: torch.Tensor | np.ndarray
    proposals: torch.Tensor | np.ndarray | None = None
    kept: torch.Tensor | np.ndarray | None = None
    saliency: torch.Tensor | np.ndarray | None = None
    object_box: torch.Tensor | np.ndarray | None = None
    true_box: torch.Tensor | np.ndarray | None = None
    iou: float | None = None
    parts: torch.Tensor | np.ndarray | None = None
    groups: torch.Tensor | np.ndarray | None = None
    true_parts: torch.Tensor | np.ndarray | None = None
    label: str | None = None
    predicted: str | None = None
    saliency_name: str = "class activation map"


_KEPT, _FOUND, _TRUE = "gold", "deepskyblue", "red"  # kept patches, object box found, true box


def _numbers(value, name: str, shape: tuple[int | None, ...], what: str) -> np.ndarray | None:
    """Field `name` as a float64 array of `shape` (None: any length), or None if not given."""
    if value is None:
        return None
    array = np.asarray(
        value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64
    )
    if array.ndim != len(shape) or any(
        n not in (None, m) for n, m in zip(shape, array.shape, strict=True)
    ):
        want = ", ".join("n" if n is None else str(n) for n in shape)
        raise ValueError(
            f"AttentionView.{name} must be ({want}{',' * (len(shape) == 1)}) "
            f"{what}, got shape {array.shape}"
        )
    return array


def _attention_picture(image) -> np.ndarray:
    """The image to show: (H, W, 3), or (H, W) for a one-channel image (drawn in grey)."""
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] not in (1, 3):
        raise ValueError(
            f"AttentionView.image must be (3, H, W) or (1, H, W), got {tuple(image.shape)}"
        )
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] == 1:
        image = image[0].detach().cpu().numpy()
    elif isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return display_array(image)


def _attention_arrays(view: AttentionView) -> dict:
    """The view's image and fields as numpy arrays, every shape checked (ValueError)."""
    if not isinstance(view, AttentionView):
        raise TypeError(f"need a labkit.attention.figures.AttentionView, got {type(view).__name__}")
    picture = _attention_picture(view.image)
    height, width = picture.shape[:2]
    box, boxes = "(box x1, y1, x2, y2)", "(boxes x1, y1, x2, y2)"
    arrays = {
        "picture": picture,
        "proposals": _numbers(view.proposals, "proposals", (None, 4), boxes),
        "kept": _numbers(view.kept, "kept", (None, 4), boxes),
        "saliency": _numbers(view.saliency, "saliency", (height, width), "(the image's H, W)"),
        "object_box": _numbers(view.object_box, "object_box", (4,), box),
        "true_box": _numbers(view.true_box, "true_box", (4,), box),
        "parts": _numbers(view.parts, "parts", (None, 4), boxes),
        "true_parts": _numbers(view.true_parts, "true_parts", (None, 3), "(x, y, visible)"),
    }
    parts = arrays["parts"]
    count = None if parts is None else len(parts)
    groups = _numbers(view.groups, "groups", (count,), "(one int per part)")
    if groups is not None and parts is None:
        raise ValueError("AttentionView.groups was given without parts: give both or neither")
    if groups is not None and np.any(groups != np.round(groups)):
        raise ValueError(f"AttentionView.groups must be whole numbers, got {groups.tolist()}")
    arrays["groups"] = None if groups is None else groups.astype(int)
    arrays["saliency_name"] = str(view.saliency_name)
    return arrays


def _box_iou(found: np.ndarray | None, true: np.ndarray | None) -> float | None:
    """IoU of two boxes (4,), x2 and y2 exclusive; None if either is missing."""
    if found is None or true is None:
        return None
    return float(box_iou(torch.tensor(found[None]), torch.tensor(true[None]))[0, 0])


def _attention_iou(view: AttentionView) -> float | None:
    """The view's IoU, else the IoU of its two boxes, else None."""
    if view.iou is not None:
        return float(view.iou)
    found = _numbers(view.object_box, "object_box", (4,), "(box x1, y1, x2, y2)")
    return _box_iou(found, _numbers(view.true_box, "true_box", (4,), "(box x1, y1, x2, y2)"))


def _class_name(name: str) -> str:
    """CUB's "017.Cardinal" or "Black_footed_Albatross" as "Cardinal", "Black footed Albatross"."""
    number, dot, rest = str(name).partition(".")
    return (rest if dot and number.isdigit() else str(name)).replace("_", " ")


def _base_panel(ax: Axes, picture: np.ndarray, title: str) -> None:
    height, width = picture.shape[:2]
    grey = {"cmap": "gray"} if picture.ndim == 2 else {}
    if picture.ndim == 2 and picture.dtype == np.uint8:
        grey |= {"vmin": 0, "vmax": 255}
    ax.imshow(picture, extent=(0, width, height, 0), **grey)  # pixel i covers [i, i + 1)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _draw_boxes(ax: Axes, boxes: np.ndarray, color, gid: str, **style) -> Patch:
    """One unfilled rectangle per box (gid names the kind); returns a legend handle."""
    for x1, y1, x2, y2 in boxes:
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, gid=gid, **style)
        )
    return Patch(fill=False, edgecolor=color, **style)


def _not_computed(ax: Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"{what}\nnot computed yet",
        ha="center",
        va="center",
        fontsize=9,
        transform=ax.transAxes,
        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85},
    )


def _legend_below(ax: Axes, handles: list, labels: list[str]) -> None:
    """Below the panel, so that it never hides the bird."""
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.01),
            ncol=min(len(handles), 3),
            fontsize=8,
            frameon=False,
            handlelength=1.5,
            columnspacing=1.0,
        )


def _patches_panel(ax: Axes, a: dict, max_proposals: int) -> None:
    proposals, kept = a["proposals"], a["kept"]
    handles, labels = [], []
    if proposals is None:
        candidates = "candidates not computed yet"
    else:
        shown = proposals[:max_proposals]
        handles.append(_draw_boxes(ax, shown, "0.45", "proposal", lw=0.6))
        some = "" if len(shown) == len(proposals) else f" (first {len(shown)})"
        labels.append(f"candidates{some}")
        candidates = f"{len(proposals)} candidates"
    if kept is not None:
        handles.append(_draw_boxes(ax, kept, _KEPT, "kept", lw=1.5))
        labels.append("kept")
    kept_text = "kept not computed yet" if kept is None else f"{len(kept)} kept"
    if proposals is None and kept is None:  # the box in the middle says it
        candidates, kept_text = "candidates", "kept"
    _base_panel(ax, a["picture"], f"patches\n{candidates}, {kept_text}")
    if proposals is None and kept is None:
        _not_computed(ax, "patches")
    _legend_below(ax, handles, labels)


def _saliency_panel(ax: Axes, a: dict) -> None:
    _base_panel(ax, a["picture"], f"saliency\n{a['saliency_name']}")
    height, width = a["picture"].shape[:2]
    if a["saliency"] is None:
        _not_computed(ax, "saliency")
    else:
        ax.imshow(
            a["saliency"],
            extent=(0, width, height, 0),
            cmap="jet",
            vmin=0,
            vmax=1,
            alpha=0.5,
            interpolation="bilinear",
        )


def _object_panel(ax: Axes, a: dict, iou: float | None) -> None:
    found, true = a["object_box"], a["true_box"]
    handles, labels = [], []
    if true is not None:
        handles.append(_draw_boxes(ax, true[None], _TRUE, "true box", lw=1.5))
        labels.append("true box")
    if found is not None:
        handles.append(_draw_boxes(ax, found[None], _FOUND, "object box", lw=1.5, ls="--"))
        labels.append("found")
    _base_panel(
        ax,
        a["picture"],
        "object box\n" + ("IoU not computed yet" if iou is None else f"IoU {iou:.2f}"),
    )
    if found is None and true is None:
        _not_computed(ax, "object box")
    _legend_below(ax, handles, labels)


def _parts_panel(ax: Axes, a: dict) -> None:
    parts, groups, true_parts = a["parts"], a["groups"], a["true_parts"]
    handles, labels = [], []
    if parts is None:
        title = "parts not computed yet"
    else:
        ids = np.zeros(len(parts), dtype=int) if groups is None else groups
        for g in np.unique(ids):
            handles.append(_draw_boxes(ax, parts[ids == g], f"C{g % 10}", f"group {g}", lw=1.5))
            labels.append("part" if groups is None else f"group {g}")
        grouped = "" if groups is None else f" in {len(np.unique(ids))} groups"
        title = f"{len(parts)} parts{grouped}"
    if true_parts is not None:
        seen = true_parts[:, 2] > 0
        handles.append(
            ax.scatter(
                true_parts[seen, 0],
                true_parts[seen, 1],
                s=10,
                c="white",
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
            )
        )
        labels.append("true parts")
    _base_panel(ax, a["picture"], f"parts\n{title}")
    if parts is None and true_parts is None:
        _not_computed(ax, "parts")
    _legend_below(ax, handles, labels)


def plot_attention(
    view: AttentionView, *, axes: Sequence[Axes] | None = None, max_proposals: int = 50
) -> Figure:
    """One image through OPAM, in four panels: (a) candidate patches (grey) and the patches the
    filter kept, (b) the saliency map over the image, (c) the object box found from it against
    the true box, with their IoU, (d) the chosen parts coloured by group and the true visible
    part keypoints. A panel whose data is None says "not computed yet"; legends sit below the
    panels, and the figure's title gives the true and the predicted class.

    Args:
        view: the image and what was computed for it (`AttentionView`).
        axes: four axes to draw into; default a new 1x4 figure.
        max_proposals: the most candidates drawn (the first ones); the title counts them all.
    Raises:
        ValueError: a field of the wrong shape, or not four axes.
    Used in: 05_opam (`labkit.attention.viewer.attention_viewer` shows it).
    """
    if not isinstance(max_proposals, int) or max_proposals < 0:
        raise ValueError(f"max_proposals must be an int >= 0, got {max_proposals!r}")
    if axes is not None and len(axes) != 4:
        raise ValueError(f"plot_attention draws four panels: pass four axes, got {len(axes)}")
    arrays = _attention_arrays(view)  # before any figure exists: a refusal leaks none
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(12, 4.2), layout="constrained")
    else:
        fig = axes[0].get_figure()
    _patches_panel(axes[0], arrays, max_proposals)
    _saliency_panel(axes[1], arrays)
    _object_panel(axes[2], arrays, _attention_iou(view))
    _parts_panel(axes[3], arrays)
    names = []
    if view.label is not None:
        names.append(f"true: {_class_name(view.label)}")
    if view.predicted is not None:
        right = _class_name(view.predicted) == _class_name(view.label)
        verdict = "" if view.label is None else (" (right)" if right else " (wrong)")
        names.append(f"predicted: {_class_name(view.predicted)}{verdict}")
    if names:
        joined = "    ".join(names)
        fig.suptitle(joined if len(joined) <= 120 else "\n".join(names), fontsize=10)
    return fig
