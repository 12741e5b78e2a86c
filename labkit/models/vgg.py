"""VGG A to E (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), laid out as torchvision's VGG so its ImageNet weights load.

Used in: 01_vgg_receptive_fields (configurations, parameters, 3x3 stacks against 7x7, dense
evaluation, fine-tuning a pretrained VGG).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from labkit.models._checks import check_positive_ints
from labkit.models.registry import named_builder, register_model

__all__ = [
    "VGG",
    "VGG_CONFIGS",
    "conv_stack",
    "load_torchvision_weights",
    "replace_head",
    "vgg",
    "vgg11",
    "vgg11_bn",
    "vgg11_lrn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_1x1",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vgg_features",
]

# Table 1 of the paper, at width 64. An int is a 3x3 conv (padding 1) + ReLU, (c, 1) a 1x1 conv
# + ReLU, "M" a 2x2 max-pool of stride 2, "LRN" local response normalisation. A, B, D and E are
# torchvision's cfgs, so the layer indices (`features.N.weight`) coincide.
VGG_CONFIGS: dict[str, list[int | str | tuple[int, int]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M",
          512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip

_INITS = ("kaiming", "he", "paper")
_HEAD = ("classifier.6.weight", "classifier.6.bias")


def _check_config(config: str) -> list[int | str | tuple[int, int]]:
    if config not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG config {config!r}; known configs: {', '.join(VGG_CONFIGS)}")
    return VGG_CONFIGS[config]


def vgg_features(
    config: str, *, batch_norm: bool = False, width: int = 64, in_channels: int = 3
) -> nn.Sequential:
    """The convolutional part of VGG `config` (a key of `VGG_CONFIGS`), as torchvision builds it.

    Args:
        batch_norm: a BatchNorm2d between every conv and its ReLU (torchvision's `*_bn`).
        width: channels of the first block; every count is scaled by width / 64, so 512 becomes
            8 * width. 64 is the paper's network.
    Input (N, in_channels, H, W); output (N, 8 * width, H / 32, W / 32) (floored by each pool).
    Raises ValueError for an unknown config (listing the known ones) or a width or in_channels
    that is not a positive int.
    """
    plan = _check_config(config)
    check_positive_ints(width=width, in_channels=in_channels)
    layers: list[nn.Module] = []
    channels = in_channels
    for v in plan:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif v == "LRN":
            # AlexNet's constants in Caffe's (and PyTorch's) convention, where alpha is divided by
            # size; the paper found LRN does not help and dropped it after A-LRN.
            layers.append(nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            out, kernel = v if isinstance(v, tuple) else (v, 3)
            out = out * width // 64  # every count in the table is a multiple of 64
            layers.append(nn.Conv2d(channels, out, kernel_size=kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
    return nn.Sequential(*layers)


def _init_weights(model: nn.Module, init: str) -> None:
    """torchvision's VGG init ("kaiming"), the same with He's rule for the hidden linears
    ("he"), or the paper's N(0, 0.1^2) for every weight ("paper")."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "paper":
                nn.init.normal_(m.weight, 0.0, 0.1)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif init == "he" and m not in last:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class VGG(nn.Module):
    """VGG: `features` (convs and pools), `avgpool` to a grid x grid map, a three-layer classifier.

    Attribute and index names are torchvision's, so its VGG state dicts load (strict) into
    configs A, B, D and E at width 64 with hidden=4096 and grid=7, with or without batch norm.

    Args:
        config: a key of `VGG_CONFIGS` ("A", "A-LRN", "B", "C", "D", "E").
        batch_norm, width, in_channels: as in `vgg_features`.
        hidden: units of the two hidden fully connected layers (4096 in the paper).
        grid: side of the adaptive average pool's output; the paper's 224 x 224 input gives 7.
        dropout: dropout probability after each hidden layer (0.5 in the paper).
        init: "kaiming", torchvision's init: convs kaiming-normal (fan_out, ReLU), linears
            N(0, 0.01^2), biases 0. "he": the same, but the two hidden linears drawn by He et
            al.'s rule (std sqrt(2 / fan_in)): torchvision's 0.01 suits 4,096-wide layers, and
            a narrow classifier (256 units) would shrink the signal about 6x per layer, so
            it hardly learns. "paper", section 3.1: every conv and linear weight
            N(0, 10^-2), i.e. std 0.1, biases 0 (BN, absent from the paper, starts at 1 and 0).
            The handout's code passed std=0.01**2 (1e-4, a thousandth of the paper's) and
            touched only `features`, leaving its Linear layers at PyTorch's default: a bug.
            The paper itself trained B to E by copying A's first four convs and three FC layers
            into them, because deep plain nets from random init stall.
    Input (N, in_channels, H, W) with H, W >= 32 (five 2x2 pools); output (N, num_classes) logits.
    Raises ValueError naming a bad argument (unknown config or init, non-positive sizes, dropout
    outside [0, 1)).
    """

    def __init__(
        self,
        config: str = "D",
        *,
        batch_norm: bool = False,
        num_classes: int = 1000,
        width: int = 64,
        hidden: int = 4096,
        grid: int = 7,
        dropout: float = 0.5,
        init: str = "kaiming",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive_ints(num_classes=num_classes, hidden=hidden, grid=grid)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if init not in _INITS:
            raise ValueError(f"unknown init {init!r}; use one of {', '.join(_INITS)}")
        self.config, self.grid = config, grid
        self.features = vgg_features(
            config, batch_norm=batch_norm, width=width, in_channels=in_channels
        )
        self.out_channels = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((grid, grid))
        self.classifier = nn.Sequential(
            nn.Linear(self.out_channels * grid * grid, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        _init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C, H / 32, W / 32)
        x = torch.flatten(self.avgpool(x), 1)  # (N, C * grid * grid)
        return self.classifier(x)  # (N, num_classes)


@register_model("vgg")
def vgg(config: str = "D", **kwargs: Any) -> VGG:
    """VGG of any config in `VGG_CONFIGS`; the keyword arguments (batch_norm, num_classes, width,
    hidden, grid, dropout, init, in_channels) as in `VGG`."""
    return VGG(config, **kwargs)


def _vgg(name: str, config: str, doc: str, **fixed: Any) -> Callable[..., VGG]:
    """Register `name(**kwargs)`, that is `vgg(config, **fixed, **kwargs)`."""
    return named_builder(name, doc, lambda **kwargs: vgg(config, **fixed, **kwargs))


# torchvision's builders differ only in config and batch norm, so each is one line. LRN has no
# parameters, so A-LRN has A's 133M; C's 1x1 convs are the third conv of blocks 3, 4 and 5.
vgg11 = _vgg("vgg11", "A", "VGG-11, config A: 8 convs + 3 FC, 133M parameters.")
vgg11_lrn = _vgg("vgg11_lrn", "A-LRN", "VGG-11 with LRN after the first conv (A-LRN).")
vgg13 = _vgg("vgg13", "B", "VGG-13, config B: 10 convs + 3 FC, 133M parameters.")
vgg16_1x1 = _vgg("vgg16_1x1", "C", "VGG-16 with three 1x1 convs (config C), 134M.")
vgg16 = _vgg("vgg16", "D", "VGG-16, config D: 13 convs + 3 FC, 138M parameters.")
vgg19 = _vgg("vgg19", "E", "VGG-19, config E: 16 convs + 3 FC, 144M parameters.")
vgg11_bn = _vgg("vgg11_bn", "A", "VGG-11 (A) with batch norm after every conv.", batch_norm=True)
vgg13_bn = _vgg("vgg13_bn", "B", "VGG-13 (B) with batch norm after every conv.", batch_norm=True)
vgg16_bn = _vgg("vgg16_bn", "D", "VGG-16 (D) with batch norm after every conv.", batch_norm=True)
vgg19_bn = _vgg("vgg19_bn", "E", "VGG-19 (E) with batch norm after every conv.", batch_norm=True)


def _guess_call(state: Mapping[str, torch.Tensor]) -> str | None:
    """The `vgg(...)` call whose model has the keys and shapes of `state`, if one does."""
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    first = shapes.get("features.0.weight", ())
    if len(first) != 4:
        return None
    kwargs = {"width": first[0], "in_channels": first[1]}
    if len(shapes.get("classifier.0.weight", ())) == 2 and len(shapes.get(_HEAD[0], ())) == 2:
        hidden, flat = shapes["classifier.0.weight"]
        grid = round((flat / (8 * first[0])) ** 0.5)
        if grid < 1:
            return None
        kwargs.update(hidden=hidden, grid=grid, num_classes=shapes[_HEAD[0]][0])
    defaults = {"width": 64, "in_channels": 3, "hidden": 4096, "grid": 7, "num_classes": 1000}
    for config in VGG_CONFIGS:
        for batch_norm in (False, True):
            with torch.device("meta"):
                model = VGG(config, batch_norm=batch_norm, **kwargs)
            expected = {
                k: tuple(v.shape)
                for k, v in model.state_dict().items()
                if not k.endswith("num_batches_tracked")
            }
            if expected == shapes:
                args = [repr(config)] + ["batch_norm=True"] * batch_norm
                args += [f"{k}={v}" for k, v in kwargs.items() if v != defaults[k]]
                return f"vgg({', '.join(args)})"
    return None


def _first(names: list[str], count: int = 4) -> str:
    more = f" and {len(names) - count} more" if len(names) > count else ""
    return ", ".join(names[:count]) + more


def load_torchvision_weights(
    model: VGG,
    weights: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    skip_classifier_head: bool = False,
) -> None:
    """Load a torchvision VGG state dict (a file or a mapping) into `model`, strictly.

    Used in: 01_vgg (fine-tuning the ImageNet VGG-16 on the flowers).

    Args:
        weights: a file saved by `torch.save(model.state_dict())` (e.g. torchvision's
            `vgg16-397923af.pth`), read on the CPU with `weights_only=True`, or the state dict.
        skip_classifier_head: leave the last Linear (`classifier.6`) as it is and ignore the
            weights' one, to fine-tune to a new number of classes (the handout's pattern).
    Raises:
        ValueError: keys missing, unexpected or of another shape, naming the file (or "state
            dict"), the first few keys, and the `vgg(...)` call the weights fit when one does.
    """
    if isinstance(weights, Mapping):
        state, source = dict(weights), "the state dict"
    else:
        state = dict(torch.load(weights, map_location="cpu", weights_only=True))
        source = os.fspath(weights)
    given, expected = state, model.state_dict()
    if skip_classifier_head:
        state = {k: v for k, v in state.items() if k not in _HEAD}
        expected = {k: v for k, v in expected.items() if k not in _HEAD}
    # Plain dicts carry no version metadata, so BatchNorm fills in a num_batches_tracked that a
    # file saved before PyTorch 0.4 lacks.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or misshaped:
        problems = [
            f"{label}: {_first(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                ("mis-shaped", misshaped))
            if keys
        ]  # fmt: skip
        guess = _guess_call(given)
        remedy = (
            f"the weights fit {guess}"
            if guess
            else "build the model with the weights' config, batch_norm, width, hidden and grid"
        )
        if not missing and not unexpected and all(k.startswith("classifier.6.") for k in misshaped):
            remedy += "; pass skip_classifier_head=True to keep this model's head"
        raise ValueError(
            f"{source} does not fit this VGG (config {model.config!r}, out_channels "
            f"{model.out_channels}, grid {model.grid}): {'; '.join(problems)}. Remedy: {remedy}"
        )
    model.load_state_dict(state, strict=not skip_classifier_head)


def replace_head(model: VGG, num_classes: int) -> nn.Linear:
    """Put a fresh Linear(hidden, num_classes) at `model.classifier[6]` and return it.

    Initialised as the "kaiming" init's linears (weights N(0, 0.01^2), bias 0), on the old
    head's device and dtype. Used in: 01_vgg (fine-tuning: a 5-way head on the ImageNet VGG-16).
    """
    check_positive_ints(num_classes=num_classes)
    old = model.classifier[6]
    head = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    nn.init.normal_(head.weight, 0.0, 0.01)
    nn.init.zeros_(head.bias)
    model.classifier[6] = head
    return head


def conv_stack(
    channels: int, kernel: int = 3, num_layers: int = 3, *, bias: bool = False
) -> nn.Sequential:
    """`num_layers` kernel x kernel convs (padding kernel // 2, size kept), each followed by ReLU.

    The paper's argument for 3x3 stacks: three 3x3 layers see 7 x 7 pixels, as one 7x7 layer
    does, with 27 C^2 weights instead of 49 C^2 (bias=False) and three ReLUs instead of one.
    Used in: 01_vgg_receptive_fields (3x3 stacks vs 7x7).

    Input and output (N, channels, H, W). Raises ValueError for non-positive sizes or an even
    kernel (no padding keeps the size).
    """
    check_positive_ints(channels=channels, kernel=kernel, num_layers=num_layers)
    if kernel % 2 == 0:
        raise ValueError(
            f"kernel must be odd so that padding kernel // 2 keeps the size, got {kernel}"
        )
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers += [
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=bias),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)
