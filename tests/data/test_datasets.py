"""The datasets loaders return: the decoded-once TensorImageDataset (items, subsets, checks) and
the seeded split by class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from labkit.data.datasets import TensorImageDataset, split_by_class
from labkit.data.transforms import normalize


def _noise(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 images (n, 3, size, size): horizontally asymmetric with certainty."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))  # fmt: skip


def test_items_are_normalised_images_and_int_labels() -> None:
    data = TensorImageDataset(_noise(3, 4), torch.tensor([2, 0, 1]), class_names=("a", "b", "c"))
    image, label = data[2]
    assert label == 1 and isinstance(label, int)
    torch.testing.assert_close(image, normalize(data.images[2]))
    assert len(data) == 3 and data.num_classes == 3
    assert repr(data) == "TensorImageDataset(3 images (3, 4, 4), 3 classes, transform=None)"


def test_subset_and_with_transform_share_images() -> None:
    data = TensorImageDataset(_noise(4, 4), torch.arange(4), paths=tuple("abcd"))
    part = data.subset([3, 1])
    assert part.labels.tolist() == [3, 1] and part.paths == ("d", "b")
    flipped = data.with_transform(v2.RandomHorizontalFlip(p=1.0))
    assert flipped.images is data.images and data.transform is None


def test_mismatched_tensors_are_refused() -> None:
    with pytest.raises(ValueError, match="one label per image"):
        TensorImageDataset(_noise(3, 4), torch.arange(2))
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(_noise(3, 4).float(), torch.arange(3))


def test_split_by_class_errors() -> None:
    with pytest.raises(ValueError, match="class 1 has 1 image: a split needs at least two"):
        split_by_class(np.array([0, 0, 1]), 0.5, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_class(np.array([0, 0]), 1.0, seed=0)
