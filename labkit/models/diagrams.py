"""Block diagrams drawn with matplotlib: a dense block, and the three equivalent ResNeXt blocks.

Boxes are layers (their text gives the layer and its channels), arrows are tensors. The channel
counts are computed from the arguments, so a diagram always matches the sizes it is drawn for.

Used in: 02_densenet_resnext (sections 2 and 4).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = ["draw_dense_block", "draw_resnext_forms"]

_BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.05", "linewidth": 1.0}
_COLORS = {"conv": "#cfe2f3", "merge": "#fce5cd", "tensor": "#eeeeee", "group": "#d9ead3"}


def _check(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, kind: str) -> None:
    """A rounded box centred at (x, y) with its text."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, facecolor=_COLORS[kind], edgecolor="0.3", **_BOX
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **kw) -> None:
    ax.annotate(
        "", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1, **kw}
    )


def _finish(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")


def draw_dense_block(num_layers: int = 3, growth_rate: int = 12, in_channels: int = 24) -> Figure:
    """A dense block of `num_layers` bottleneck layers and the transition after it.

    Layer l reads the concatenation of the block's input and every earlier layer's k new channels
    (Huang et al., 2017, Fig. 2); the channel count after each concatenation is written on it.
    Raises ValueError unless every argument is a positive int.
    """
    _check(num_layers=num_layers, growth_rate=growth_rate, in_channels=in_channels)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    xs = [0.9 + i * (8.1 / (num_layers + 1)) for i in range(num_layers + 2)]
    y_top, y_mid = 8.2, 4.6
    channels = in_channels
    _box(ax, xs[0], y_mid, 1.3, 1.2, f"input\n{channels} ch", "tensor")
    for layer in range(1, num_layers + 1):
        x = xs[layer]
        text = f"layer {layer}\nBN-ReLU-1x1 ({4 * growth_rate})\nBN-ReLU-3x3 ({growth_rate})"
        _box(ax, x, y_top, 1.7, 1.6, text, "conv")
        _box(ax, x, y_mid, 1.3, 1.2, f"concat\n{channels + growth_rate} ch", "merge")
        for earlier in range(layer):  # every earlier tensor feeds this layer
            _arrow(ax, (xs[earlier] + 0.4, y_mid + 0.6), (x - 0.5, y_top - 0.8), alpha=0.5)
        _arrow(ax, (x, y_top - 0.8), (x, y_mid + 0.6))
        _arrow(ax, (xs[layer - 1] + 0.65, y_mid), (x - 0.65, y_mid))
        channels += growth_rate
    x = xs[-1]
    out = channels // 2
    _box(ax, x, y_mid, 1.7, 1.6, f"transition\nBN-ReLU-1x1 ({out})\navg pool 2x2", "conv")
    _arrow(ax, (xs[-2] + 0.65, y_mid), (x - 0.85, y_mid))
    ax.text(
        5,
        1.6,
        f"growth rate k = {growth_rate}: each layer adds k channels, "
        f"{in_channels} + {num_layers} x {growth_rate} = {channels}; "
        f"the transition halves them to {out} and halves height and width",
        ha="center",
        fontsize=8,
    )
    _finish(ax, f"a dense block of {num_layers} layers and its transition")
    fig.tight_layout()
    return fig


def _form(ax: Axes, form: str, cardinality: int, d: int, in_channels: int) -> None:
    """One of the three forms (a), (b), (c) of the ResNeXt block on `ax`."""
    shown = min(cardinality, 3)  # paths drawn; the rest are an ellipsis
    width, out = cardinality * d, 2 * cardinality * d
    xs = [2.0 + i * 2.4 for i in range(shown)]
    _box(ax, 5, 9.2, 3.0, 0.8, f"input, {in_channels} ch", "tensor")
    if form == "c":
        _box(ax, 5, 7.3, 4.2, 0.9, f"1x1 conv, {in_channels} -> {width}", "conv")
        _box(ax, 5, 5.3, 4.2, 1.1, f"3x3 conv, {width} -> {width}\ngroups = {cardinality}", "group")
        _box(ax, 5, 3.3, 4.2, 0.9, f"1x1 conv, {width} -> {out}", "conv")
        for a, b in [(8.8, 7.75), (6.85, 5.85), (4.75, 3.75)]:
            _arrow(ax, (5, a), (5, b))
        last = 2.85
    else:
        for x in xs:
            _arrow(ax, (5, 8.8), (x, 7.75))
            _box(ax, x, 7.3, 2.0, 0.9, f"1x1, {in_channels}->{d}", "conv")
            _box(ax, x, 5.5, 2.0, 0.9, f"3x3, {d}->{d}", "group")
            _arrow(ax, (x, 6.85), (x, 5.95))
        ax.text(9.2, 6.4, f"x {cardinality}\npaths", ha="center", fontsize=8)
        if form == "a":
            for x in xs:
                _box(ax, x, 3.7, 2.0, 0.9, f"1x1, {d}->{out}", "conv")
                _arrow(ax, (x, 5.05), (x, 4.15))
                _arrow(ax, (x, 3.25), (5, 2.35))
            _box(ax, 5, 1.95, 1.6, 0.8, "+ (sum)", "merge")
            last = 1.55
        else:
            _box(ax, 5, 3.9, 3.6, 0.8, f"concatenate, {width} ch", "merge")
            for x in xs:
                _arrow(ax, (x, 5.05), (5, 4.3))
            _box(ax, 5, 2.4, 3.6, 0.8, f"1x1 conv, {width} -> {out}", "conv")
            _arrow(ax, (5, 3.5), (5, 2.8))
            last = 2.0
    _arrow(ax, (5, last), (5, 0.7))
    ax.text(5, 0.35, f"+ shortcut, ReLU: {out} ch", ha="center", fontsize=8)


def draw_resnext_forms(
    cardinality: int = 4, bottleneck_width: int = 4, in_channels: int = 64
) -> Figure:
    """The three equivalent forms of a ResNeXt block (Xie et al., 2017, Fig. 3), side by side.

    (a) `cardinality` paths, each 1x1, 3x3, 1x1, summed; (b) the paths concatenated before one
    shared 1x1; (c) one grouped 3x3 convolution. Widths follow the lab's block: C d inside, 2 C d
    at the output. BN and ReLU after each convolution are left out of the drawing.
    Raises ValueError unless every argument is a positive int.
    """
    _check(cardinality=cardinality, bottleneck_width=bottleneck_width, in_channels=in_channels)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    titles = {
        "a": "(a) separate paths, added",
        "b": "(b) paths concatenated, one 1x1",
        "c": "(c) one grouped convolution",
    }
    for ax, (form, title) in zip(axes, titles.items(), strict=True):
        _form(ax, form, cardinality, bottleneck_width, in_channels)
        _finish(ax, title)
    fig.suptitle(
        f"the same ResNeXt block three ways: cardinality C = {cardinality}, "
        f"bottleneck width d = {bottleneck_width}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
