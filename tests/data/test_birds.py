"""Birds by name: CUB-200-2011 or synthetic, a resized copy, the source task."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit.data import (
    CubError,
    LabData,
    SynthBirdsSpec,
    find_cub,
    load_birds,
    load_data,
    load_source_birds,
    write_synthetic_birds,
)

SPEC = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=1, image_size=48)
SOURCE = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=1, image_size=48,
                        task="source")  # fmt: skip


def test_synthetic_birds_when_cub_is_absent(tmp_path: Path, capsys) -> None:
    data = load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path)
    line = capsys.readouterr().out.strip()
    assert isinstance(data, LabData) and data.source == "synthetic birds"
    assert "no CUB_200_2011 at" in line and "`labkit fetch cub` brings the real set" in line
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


def test_cub_copy_is_independent(tmp_path: Path) -> None:
    cub = write_synthetic_birds(tmp_path / "CUB_200_2011", SPEC)
    shutil.copytree(cub, tmp_path / "CUB_200_2011-short64")
    data = load_birds(resize=40, crop=32, synthetic=SPEC, root=tmp_path, verbose=False)
    assert data.root.name == "CUB_200_2011-short64"
