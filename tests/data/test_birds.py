"""Data sets by name: birds (CUB-200-2011 or synthetic), the source task, a photo folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data import (
    CubError,
    LabData,
    SynthBirdsSpec,
    find_cub,
    load_birds,
    load_data,
    load_photo_folder,
    load_source_birds,
    split_by_class,
    write_synthetic_birds,
)

SPEC = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=1, image_size=48)
SOURCE = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=1, image_size=48,
                        task="source")  # fmt: skip


def test_synthetic_birds_when_cub_is_absent(tmp_path: Path, capsys) -> None:
    data = load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path)
    line = capsys.readouterr().out.strip()
    assert isinstance(data, LabData) and data.source == "synthetic birds"
    assert "no CUB_200_2011 at" in line and "unpack CUB_200_2011.tgz there" in line
    assert "train 6, test 3 images, 3 classes" in line and "\n" not in line
    image, label = data.train[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert data.root.parent == tmp_path / "builtin"


def test_cub_when_present(tmp_path: Path, capsys) -> None:
    write_synthetic_birds(tmp_path / "CUB_200_2011", SPEC)  # stands in for the real set
    data = load_data("birds", resize=40, crop=32, synthetic=SPEC, root=tmp_path, with_geometry=True)
    assert data.source == "CUB-200-2011" and data.root == tmp_path / "CUB_200_2011"
    assert "CUB-200-2011 at" in capsys.readouterr().out
    assert not (tmp_path / "builtin").exists()  # nothing synthetic written
    _, _, box, parts = data.test[0]
    assert box.shape == (4,) and parts.shape == (15, 3)


def test_a_broken_cub_folder_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    cub = write_synthetic_birds(tmp_path / "CUB_200_2011", SPEC)
    (cub / "images.txt").unlink()
    with pytest.raises(CubError, match=r"images\.txt is missing"):
        load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path)


def test_the_smallest_resized_copy_that_covers_the_resize(tmp_path: Path) -> None:
    assert find_cub(tmp_path, 100) is None
    for name in ("CUB_200_2011", "CUB_200_2011-short64", "CUB_200_2011-short256"):
        (tmp_path / name).mkdir()
    assert find_cub(tmp_path, 64).name == "CUB_200_2011-short64"
    assert find_cub(tmp_path, 100).name == "CUB_200_2011-short256"
    assert find_cub(tmp_path, 300).name == "CUB_200_2011"


def test_source_task_species_are_not_the_labs(tmp_path: Path) -> None:
    birds = load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path, verbose=False)
    source = load_source_birds(resize=40, crop=32, synthetic=SOURCE, root=tmp_path, verbose=False)
    strip = lambda names: {n.split(".", 1)[1] for n in names}  # noqa: E731
    assert strip(birds.class_names).isdisjoint(strip(source.class_names))
    with pytest.raises(ValueError, match="task='source'"):
        load_source_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path)


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="no data set called 'cats'; known: digits, birds"):
        load_data("cats")


def _photos(root: Path, counts: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")
    return root


def test_photo_folder_split_by_class(tmp_path: Path, capsys) -> None:
    folder = _photos(tmp_path / "flower_photos", {"daisy": 10, "roses": 5, "tulips": 2})
    data = load_photo_folder("flower_photos", resize=36, crop=32, root=tmp_path)
    assert data.class_names == ("daisy", "roses", "tulips") and data.root == folder
    assert (len(data.train), len(data.test)) == (14, 3)  # one test image per class here
    image, label = data.train[0]
    assert image.shape == (3, 32, 32) and label == 0
    assert "10% of each class, seed 0" in capsys.readouterr().out
    again = load_photo_folder(folder, resize=36, crop=32, verbose=False)
    assert again.test.indices == data.test.indices


def test_split_by_class_errors() -> None:
    with pytest.raises(ValueError, match="class 1 has 1 image: a split needs at least two"):
        split_by_class(np.array([0, 0, 1]), 0.5, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_class(np.array([0, 0]), 1.0, seed=0)


def test_photo_folder_names_the_folder_of_a_lone_image_and_of_a_broken_file(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "flowers", {"daisy": 3, "tulips": 1})
    with pytest.raises(ValueError, match=r"flowers/tulips has 1 image"):
        load_photo_folder(folder, resize=36, crop=32, verbose=False)
    (folder / "roses").mkdir()
    for i in range(2):
        (folder / "roses" / f"{i}.jpg").write_bytes(b"not a photo")
    (folder / "tulips" / "1.jpg").write_bytes((folder / "tulips" / "0.jpg").read_bytes())
    data = load_photo_folder(folder, resize=36, crop=32, verbose=False)
    broken = [i for i, (_, label) in enumerate(data.train.dataset.samples) if label == 1]
    with pytest.raises(ValueError, match=r"roses/.\.jpg.*replace or delete this file"):
        data.train.dataset[broken[0]]


def test_photo_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="flower_photos"):
        load_photo_folder("flower_photos", resize=36, crop=32, root=tmp_path)


def test_cub_copy_is_independent(tmp_path: Path) -> None:
    cub = write_synthetic_birds(tmp_path / "CUB_200_2011", SPEC)
    shutil.copytree(cub, tmp_path / "CUB_200_2011-short64")
    data = load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path, verbose=False)
    assert data.root.name == "CUB_200_2011-short64"


def test_every_data_set_by_name_is_a_lab_data(tmp_path: Path) -> None:
    digits = load_data("digits", image_size=16, train_per_class=2, test_per_class=1,
                       root=tmp_path, verbose=False)  # fmt: skip
    birds = load_data("birds", resize=40, crop=32, synthetic=SPEC, root=tmp_path, verbose=False)
    folder = _photos(tmp_path / "flower_photos", {"daisy": 3, "roses": 3})
    photos = load_data("photo folder", folder, resize=36, crop=32, verbose=False)
    for data in (digits, birds, photos):
        assert isinstance(data, LabData) and data.num_classes == len(data.class_names)
        image, label = data.train[0][:2]
        assert image.dtype.is_floating_point and image.shape[0] == 3 and isinstance(label, int)
