"""Models by family; every classifier builder is registered, so `get_model(name)` builds any.

Backbones (`backbones`) return feature maps and are not registered; the heads and nets built on
them live in their topic wings (`labkit.bilinear`, `labkit.attention.part_alignment`). ImageNet
weights are data (`weights`: the file and where it is looked for, its preprocessing, its
classes). As torchvision's `models/__init__.py`, this module re-exports each family module's
`__all__`, which is the one list of what the family exports; importing a family registers its
builders.
"""

from labkit.models.backbones import *  # noqa: F403
from labkit.models.densenet import *  # noqa: F403
from labkit.models.registry import *  # noqa: F403
from labkit.models.res2net import *  # noqa: F403
from labkit.models.resnet import *  # noqa: F403
from labkit.models.resnext import *  # noqa: F403
from labkit.models.summary import *  # noqa: F403
from labkit.models.vgg import *  # noqa: F403
from labkit.models.weights import *  # noqa: F403
