"""Output sizes, receptive fields and jumps of a chain of layers (handout 001, lab 01).

For a layer with kernel k, stride s, padding p and dilation d, on an input of n pixels (one
spatial axis), whose units have receptive field r, jump j (the distance in input pixels between
neighbouring units) and first-unit centre c:

    effective kernel   k' = d (k - 1) + 1
    output size        n_out = floor((n + 2 p - k') / s) + 1      (the handout's M formula)
    receptive field    r_out = r + (k' - 1) j
    jump               j_out = j s
    first centre       c_out = c + ((k' - 1) / 2 - p) j

starting from the image itself: r = 1, j = 1, c = 0.5 (pixel centres at 0.5, 1.5, ...).
Layers that keep the geometry (activations, batch norm, dropout, flatten of a 1x1 map) pass the
values on unchanged. `unit_field` turns a row into the box of input pixels one unit sees.

Used in: 01_vgg_receptive_fields.
"""

from __future__ import annotations

import math
from numbers import Integral

import pandas as pd
import torch
from torch import nn

__all__ = [
    "GEOMETRY_FREE",
    "check_input_size",
    "clip_field",
    "layer_geometry",
    "receptive_field_table",
    "unit_field",
]

# layers that change neither the size nor the field of a feature map
GEOMETRY_FREE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout,
    nn.Dropout2d, nn.BatchNorm2d, nn.LocalResponseNorm, nn.GroupNorm, nn.InstanceNorm2d,
)  # fmt: skip


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def layer_geometry(layer: nn.Module) -> tuple[int, int, int, int] | None:
    """(kernel, stride, padding, dilation) of a square convolution or pooling layer; None for a
    layer that keeps the geometry (`GEOMETRY_FREE`).

    Raises:
        ValueError: a layer whose geometry this module does not know (naming it), or a
            non-square kernel, stride, padding or dilation.
    """
    if isinstance(layer, GEOMETRY_FREE):
        return None
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(layer, "ceil_mode", False):
            raise ValueError(f"{layer}: ceil_mode=True is not supported (the formula floors)")
        if isinstance(layer, nn.Conv2d) and layer.padding == "same":
            raise ValueError(f"{layer}: give the padding as a number, not 'same'")
        values = [_pair(getattr(layer, name, 1)) for name in ("kernel_size", "stride",
                                                              "padding", "dilation")]  # fmt: skip
        if any(a != b for a, b in values):
            raise ValueError(f"{layer}: only square kernels, strides, paddings and dilations")
        kernel, stride, padding, dilation = (a for a, _ in values)
        return kernel, stride, padding, dilation
    raise ValueError(
        f"no receptive-field rule for {type(layer).__name__} ({layer}); the table knows "
        "Conv2d, MaxPool2d, AvgPool2d and layers that keep the geometry (GEOMETRY_FREE)"
    )


def _chain(model: nn.Module, input_size: int) -> list[tuple[str, nn.Module]]:
    """The leaf modules of `model` in the order they run, checked to form a chain: each one's
    input is the previous one's output."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    order: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(
            lambda mod, args, out, name=n: order.append((name, mod, args[0], out))
        )
        for n, m in leaves
    ]
    convs = [m for _, m in leaves if isinstance(m, nn.Conv2d)]
    channels = convs[0].in_channels if convs else 3  # what the first convolution reads
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, input_size, input_size))
    except RuntimeError as err:
        raise ValueError(
            f"{type(model).__name__} cannot run on a {input_size} x {input_size} input (too small "
            f"for one of its layers?): {err}"
        ) from err
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    for (_, _, _, previous), (name, _, given, _) in zip(order, order[1:], strict=False):
        same = given is previous or (
            given.data_ptr() == previous.data_ptr() and given.shape == previous.shape
        )
        if not same:
            raise ValueError(
                f"{type(model).__name__} is not a chain of layers: {name} does not read the "
                "output of the layer before it (a branch, a shortcut or a functional call); "
                "the receptive-field table needs layers that run one after another"
            )
    return [(name, module) for name, module, _, _ in order]


def receptive_field_table(model: nn.Module, input_size: int) -> pd.DataFrame:
    """One row per layer of a chain (an `nn.Sequential`, a VGG's `features`, any model whose
    modules run one after another) on a square `input_size` x `input_size` input (with the
    channels its first convolution reads, 3 without one).

    Columns: layer (its name in the model), kind, kernel, stride, padding, dilation, output size
    (pixels per side), receptive field (input pixels per side), jump (input pixels between
    neighbouring units), first centre (input coordinate of the first unit's field centre, pixel
    centres at 0.5, 1.5, ...). Geometry-free layers are listed with the values they pass on.

    Raises:
        ValueError: the model is not a chain (naming the first layer that breaks it), a layer has
            no known rule, or the input is too small for a layer (naming it).
    """
    rows = []
    size, field, jump, centre = input_size, 1, 1, 0.5
    for name, layer in _chain(model, input_size):
        geometry = layer_geometry(layer)
        if geometry is not None:
            kernel, stride, padding, dilation = geometry
            effective = dilation * (kernel - 1) + 1
            out = math.floor((size + 2 * padding - effective) / stride) + 1
            if out < 1:
                raise ValueError(f"input of {size} pixels is too small for {name} ({layer})")
            size, centre = out, centre + ((effective - 1) / 2 - padding) * jump
            field, jump = field + (effective - 1) * jump, jump * stride
        else:
            kernel = stride = padding = dilation = None
        rows.append({
            "layer": name, "kind": type(layer).__name__, "kernel": kernel, "stride": stride,
            "padding": padding, "dilation": dilation, "output size": size,
            "receptive field": field, "jump": jump, "first centre": centre,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("layer")


# ---------------------------------------------------------------- one unit's field (the explorer)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: pixel edges, pixel i covers [i, i + 1)


def _row(table: pd.DataFrame, layer: str | int) -> tuple[str, pd.Series]:
    """(label, row) of `layer`: a row label of the table, or else an integer position."""
    if layer in table.index:
        return layer, table.loc[layer]
    position = isinstance(layer, Integral) and not isinstance(layer, bool)
    if position and 0 <= layer < len(table):
        return table.index[layer], table.iloc[layer]
    known = ", ".join(map(str, table.index))
    raise ValueError(
        f"unknown layer {layer!r}: give a row label of the table ({known}) or a position from 0 "
        f"to {len(table) - 1}"
    )


def unit_field(table: pd.DataFrame, layer: str | int, row: int, col: int) -> Box:
    """The input-pixel box (x0, y0, x1, y1) that output unit (row, col) of `layer` sees.

    Centre = first centre + index * jump on each axis (col along x, row along y), half-width =
    receptive field / 2. Not clipped: near the border the box reaches into the padding, which is
    what the unit sees; `clip_field` gives the part inside the image.

    Args:
        table: from `receptive_field_table`.
        layer: a row label (e.g. "28" in VGG-16's `features`), or else a position in the table.
        row, col: the unit, 0 to output size - 1.
    Raises:
        ValueError: an unknown layer (listing the known ones) or a unit outside the layer's output.
    Used in: 01_vgg_receptive_fields (the receptive-field explorer).
    """
    label, info = _row(table, layer)
    size = int(info["output size"])
    if not (0 <= row < size and 0 <= col < size):
        raise ValueError(
            f"unit ({row}, {col}) is outside layer {label}'s {size} x {size} output: row and col "
            f"run from 0 to {size - 1}"
        )
    half, jump, first = info["receptive field"] / 2, info["jump"], info["first centre"]
    x, y = first + col * jump, first + row * jump
    return float(x - half), float(y - half), float(x + half), float(y + half)


def clip_field(box: Box, height: int, width: int) -> Box:
    """The part of `box` inside a height x width image (zero width or height if none is)."""
    x0, y0, x1, y1 = box
    x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
    y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    return float(x0), float(y0), float(x1), float(y1)


def check_input_size(table: pd.DataFrame, height: int, width: int) -> None:
    """Raise ValueError unless `table` describes a height x width input: the table's layers,
    run on that size, must give the table's output sizes.

    Why not compare with one stored size: two sizes that a strided first layer maps to the same
    output (224 and 225 under a stride 2) have the same geometry, and either table fits both.
    """
    if height != width:
        raise ValueError(
            f"the receptive-field table is for square inputs but the image is {height} x {width}; "
            "resize or crop it to a square, then make the table for that size"
        )
    size = height
    for label, info in table.iterrows():
        if pd.notna(info["kernel"]):
            kernel, stride, padding, dilation = (
                int(info[c]) for c in ("kernel", "stride", "padding", "dilation")
            )
            size = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        if size != info["output size"]:
            raise ValueError(
                f"the receptive-field table does not fit a {height} x {width} image: on it layer "
                f"{label} gives {size} x {size} units, the table says {info['output size']} x "
                f"{info['output size']}; make the table for the image's size: "
                f"receptive_field_table(model, {height})"
            )
