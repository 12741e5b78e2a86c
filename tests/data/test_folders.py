"""Decoding image folders: ImageFolder's order, colour modes, resizing, bad files and folders."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from labkit.data.folders import read_image_folder


def _folder(root: Path, per_class: dict[str, int], size: int = 8) -> Path:
    """`root/<class>/<i>.png`: RGB images whose red channel is the class index, green the file's."""
    for c, (name, n) in enumerate(per_class.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.zeros((size, size, 3), dtype=np.uint8)
            pixels[..., 0], pixels[..., 1] = 10 * c, 10 * i
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def test_matches_torchvision_imagefolder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "train", {"3": 2, "1": 3, "10": 1, "2": 2})
    (root / "1" / "readme.txt").write_text("not an image; ignored like ImageFolder does")
    data = read_image_folder(root, image_size=None)
    reference = ImageFolder(root)
    assert list(data.class_names) == reference.classes
    assert [str(p) for p in data.paths] == [path for path, _ in reference.samples]
    assert data.labels.tolist() == [label for _, label in reference.samples]
    for i, (image, _) in enumerate(reference):
        assert torch.equal(data.images[i], torch.from_numpy(np.array(image)).permute(2, 0, 1))
    assert data.images.dtype == torch.uint8 and data.images.shape == (8, 3, 8, 8)


def test_per_class_keeps_the_first_files(tmp_path: Path) -> None:
    root = _folder(tmp_path / "train", {"a": 4, "b": 1, "c": 3})
    data = read_image_folder(root, image_size=None, per_class=2)
    assert [p.relative_to(root).as_posix() for p in data.paths] == [
        "a/000.png", "a/001.png", "b/000.png", "c/000.png", "c/001.png",
    ]  # fmt: skip
    assert data.labels.tolist() == [0, 0, 1, 2, 2]


def test_resize_is_antialiased(tmp_path: Path) -> None:
    (tmp_path / "train" / "x").mkdir(parents=True)
    stripes = np.zeros((32, 32), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: plain subsampling would give all 0 or all 255
    Image.fromarray(stripes).save(tmp_path / "train" / "x" / "a.png")
    data = read_image_folder(tmp_path / "train", image_size=16)
    assert data.images.shape == (1, 3, 16, 16)
    inner = data.images[0, :, 2:-2, 2:-2].float()
    assert (inner - 127.5).abs().max() < 3  # averaged to grey


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16"])
def test_other_colour_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    # each mode's rule is tested in test_image_modes.py; 16-bit 200 * 257 is 8-bit 200
    (tmp_path / "train" / "x").mkdir(parents=True)
    grey = np.full((4, 4), 200, dtype=np.uint8)
    image = (
        Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(grey)
    )
    image.convert(mode).save(tmp_path / "train" / "x" / "a.png")
    data = read_image_folder(tmp_path / "train", image_size=None)
    assert data.images.shape == (1, 3, 4, 4)
    assert data.images.eq(200).all()  # the same grey in all three channels


def test_truncated_image_names_file_and_remedy(tmp_path: Path) -> None:
    root = _folder(tmp_path / "train", {"0": 2, "1": 2}, size=64)
    bad = root / "1" / "001.png"
    bad.write_bytes(bad.read_bytes()[:-60])
    with pytest.raises(ValueError, match=rf"cannot decode image {re.escape(str(bad))}.*make_mnist"):
        read_image_folder(root, image_size=32)


def test_non_image_file_names_file(tmp_path: Path) -> None:
    root = _folder(tmp_path / "train", {"0": 1})
    bad = root / "0" / "notes.png"
    bad.write_text("this is text, not a PNG")
    with pytest.raises(ValueError, match=rf"cannot decode image {re.escape(str(bad))}: .*delete"):
        read_image_folder(root, image_size=8, remedy="delete it")


def test_empty_class_folder_names_it(tmp_path: Path) -> None:
    root = _folder(tmp_path / "train", {"0": 1})
    (root / "1").mkdir()
    (root / "1" / "Thumbs.db").write_bytes(b"")
    with pytest.raises(ValueError, match=rf"class folder {re.escape(str(root / '1'))} holds no"):
        read_image_folder(root, image_size=8)


def test_split_without_class_folders_names_it(tmp_path: Path) -> None:
    root = tmp_path / "train"
    root.mkdir()
    Image.new("RGB", (4, 4)).save(root / "loose.png")  # images must sit in class folders
    with pytest.raises(ValueError, match=rf"{re.escape(str(root))} has no class folders"):
        read_image_folder(root, image_size=8)


def test_missing_split_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "test"))):
        read_image_folder(tmp_path / "test", image_size=8)


def test_mixed_sizes_need_an_image_size(tmp_path: Path) -> None:
    root = _folder(tmp_path / "a", {"0": 1}, size=8)
    _folder(tmp_path / "b", {"0": 1}, size=9)
    (tmp_path / "b" / "0" / "000.png").rename(root / "0" / "001.png")
    with pytest.raises(ValueError, match="image_size"):
        read_image_folder(root, image_size=None)
    assert read_image_folder(root, image_size=8).images.shape == (2, 3, 8, 8)
