"""The decoded-once dataset: normalisation, display, augmentation that shifts but never mirrors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from labkit.data.loaders import digits_augmentation
from labkit.data.tensor_dataset import TensorImageDataset, normalize, to_display


def _noise(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 images (n, 3, size, size): horizontally asymmetric with certainty."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))  # fmt: skip


def _offsets(out: torch.Tensor, image: torch.Tensor, pad: int) -> list[tuple[int, int]]:
    """Every (dy, dx) at which `out` is a crop of `image` padded with zeros by `pad`."""
    padded = F.pad(image, (pad, pad, pad, pad))
    size = image.shape[-1]
    return [
        (dy, dx)
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
        if torch.equal(padded[:, dy : dy + size, dx : dx + size], out)
    ]


def test_normalize_and_to_display_invert_each_other() -> None:
    images = _noise(2, 5)
    x = normalize(images)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x, v2.Normalize([0.5] * 3, [0.5] * 3)(images.float() / 255))
    shown = to_display(x)
    assert shown.shape == (2, 5, 5, 3)
    torch.testing.assert_close(torch.from_numpy(shown), images.permute(0, 2, 3, 1) / 255.0)
    assert to_display(images[0]).shape == (5, 5, 3)  # uint8 and single images too


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


@pytest.mark.parametrize("size", [16, 32])
def test_augmentation_shifts_but_never_mirrors(size: int) -> None:
    torch.manual_seed(0)
    pad = size // 8
    image = _noise(1, size)[0]
    mirrored = image.flip(-1)
    augment = digits_augmentation(size)
    seen = set()
    for _ in range(60):
        out = augment(image)
        assert out.shape == image.shape and out.dtype == torch.uint8
        offsets = _offsets(out, image, pad)
        assert len(offsets) == 1  # a shifted copy of the image itself
        assert not _offsets(out, mirrored, pad)  # never the mirror image
        seen.add(offsets[0])
    assert len(seen) > 10  # the crops really move


def test_dataset_applies_augmentation_before_normalising() -> None:
    torch.manual_seed(1)
    images = _noise(2, 16)
    data = TensorImageDataset(images, torch.tensor([0, 1]), transform=digits_augmentation(16))
    for _ in range(20):
        x, _ = data[1]
        as_uint8 = (torch.from_numpy(to_display(x)).permute(2, 0, 1) * 255).round().to(torch.uint8)
        assert _offsets(as_uint8, images[1], 2)
