"""Lab 05's attention viewer: images' OPAM panels one at a time (slider, Previous / Next).

A thin shell over `labkit.attention.figures`: image `i` shows `render_attention(view)` and the
caption `attention_caption(view, i, count)`, so a plain cell draws anything it shows.
ipywidgets is imported only when a viewer is built.

Used in: 05_opam.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from labkit.attention.figures import AttentionView, _attention_iou, _class_name, plot_attention
from labkit.plots import figure_png

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["attention_caption", "attention_viewer", "render_attention"]


def render_attention(view: AttentionView) -> Figure:
    """One image's OPAM panels: what `attention_viewer` shows.

    Like `labkit.attention.figures.plot_attention`, in a figure not registered with pyplot:
    browsing leaks no figures and shows none twice; in a notebook, a bare `fig` shows it.

    Used in: 05_opam.
    """
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    plot_attention(view, axes=fig.subplots(1, 4))
    return fig


def attention_caption(view: AttentionView, i: int, count: int) -> str:
    """One line (HTML) on view `i` of `count`: the true and the predicted class, and the IoU of
    the object box found with the true box (as the figure's title gives it)."""
    true = "?" if view.label is None else html.escape(_class_name(view.label))
    pred = "?" if view.predicted is None else html.escape(_class_name(view.predicted))
    verdict = ""
    if view.label is not None and view.predicted is not None:
        verdict = " (right)" if true == pred else " (wrong)"
    iou = _attention_iou(view)
    iou_text = "not computed yet" if iou is None else f"{iou:.2f}"
    return (
        f"image {i} of {count} (0 to {count - 1}): true <b>{true}</b>, "
        f"predicted <b>{pred}</b>{verdict}; IoU {iou_text}"
    )


def attention_viewer(
    views: Sequence[AttentionView] | Callable[[int], AttentionView],
    *,
    count: int | None = None,
    captions: Sequence[str] | None = None,
    start: int = 0,
) -> ipywidgets.Widget:
    """Browse images' OPAM panels one at a time (slider "image", Previous / Next buttons; the
    slider takes the arrow keys once focused).

    Args:
        views: AttentionViews, or a function of the index (0 to count - 1) that makes one,
            called when that image is first shown; each image is drawn once.
        count: how many images the function makes; with a sequence, its length.
        captions: one more line of text per image (e.g. its file name), below the caption.
        start: the index shown first.
    Returns:
        a VBox of the controls, the caption (`attention_caption`) and the figure
        (`render_attention`).
    Raises:
        ValueError: no views, a function without `count`, `captions` of another length or
            `start` out of range.
        TypeError: a single AttentionView (pass a list), or a view that is not one.
    Used in: 05_opam.
    """
    import ipywidgets as widgets

    if isinstance(views, AttentionView):
        raise TypeError("attention_viewer needs a list of views: pass [view] for one image")
    if callable(views):
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError(
                "attention_viewer got a function of the index: pass count=, the "
                f"number of images it makes (got count={count!r})"
            )
        get = views
    else:
        if count is not None and count != len(views):
            raise ValueError(f"count={count} but views holds {len(views)}: leave count out")
        count, get = len(views), views.__getitem__
    if count < 1:
        raise ValueError("attention_viewer got no views: pass at least one AttentionView")
    if captions is not None and len(captions) != count:
        raise ValueError(f"captions needs one line per image ({count}), got {len(captions)}")
    if not isinstance(start, int) or not 0 <= start < count:
        raise ValueError(f"start={start!r} is out of range: the images are 0 to {count - 1}")

    @functools.lru_cache(maxsize=64)  # each image drawn once while browsing
    def drawn(i: int) -> tuple[bytes, str]:
        view = get(i)
        if not isinstance(view, AttentionView):
            raise TypeError(f"view {i} is a {type(view).__name__}, not a labkit AttentionView")
        line = attention_caption(view, i, count)
        if captions is not None:
            line += "<br>" + html.escape(str(captions[i]))
        return figure_png(render_attention(view)), line

    slider = widgets.IntSlider(
        value=start, min=0, max=count - 1, description="image", continuous_update=False
    )
    previous = widgets.Button(description="Previous", icon="arrow-left")
    following = widgets.Button(description="Next", icon="arrow-right")
    caption = widgets.HTML()
    picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))

    def show(change: dict | None = None) -> None:
        picture.value, caption.value = drawn(slider.value)

    def step(delta: int) -> None:
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    slider.observe(show, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(1))
    show()  # raises here for a bad first view
    viewer = widgets.VBox(
        [widgets.HBox([previous, slider, following]), caption, picture],
        layout=widgets.Layout(align_items="flex-start"),
    )
    viewer.add_class("labkit-attention")  # for browser tests
    return viewer
