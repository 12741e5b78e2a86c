"""Preparing CUB-200-2011: unpacking, reporting every problem at once, the resized copy."""

from __future__ import annotations

import importlib.util
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data.cub import read_cub_index
from labkit.data.cub_prepare import cub_problems, unpack_cub, write_resized_copy
from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds

ROOT = Path(__file__).resolve().parents[2]
SPEC = SynthBirdsSpec(num_classes=2, train_per_class=2, test_per_class=1, image_size=48)


def _script():
    spec = importlib.util.spec_from_file_location("prepare_cub", ROOT / "data_prep/prepare_cub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cub(tmp_path: Path) -> Path:
    return write_synthetic_birds(tmp_path / "src" / "CUB_200_2011", SPEC)


def _tgz(cub: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(cub, arcname="CUB_200_2011")
    return path


def test_unpacks_the_tarball(cub: Path, tmp_path: Path) -> None:
    folder = unpack_cub(_tgz(cub, tmp_path / "CUB_200_2011.tgz"), tmp_path / "data")
    assert folder == tmp_path / "data" / "CUB_200_2011"
    assert cub_problems(folder, decode=True, progress=False) == []
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["CUB_200_2011"]


def test_a_truncated_or_wrong_tarball(cub: Path, tmp_path: Path) -> None:
    archive = _tgz(cub, tmp_path / "CUB_200_2011.tgz")
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(ValueError, match="CUB_200_2011.tgz.*(truncated|images.txt)"):
        unpack_cub(archive, tmp_path / "data")
    other = tmp_path / "CUB_200.tgz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(cub / "classes.txt", arcname="images/classes.txt")
    with pytest.raises(ValueError, match="not CUB-200 from 2010"):
        unpack_cub(other, tmp_path / "data")


def test_every_problem_reported_with_decoding(cub: Path) -> None:
    files = sorted((cub / "images").rglob("*.jpg"))
    files[0].write_bytes(files[0].read_bytes()[:100])
    files[1].write_bytes(b"not an image at all")
    problems = cub_problems(cub, decode=True, progress=False)
    assert len(problems) == 2
    assert all("cannot decode image" in p for p in problems)
    assert problems[0].startswith("image id 1:") and files[0].name in problems[0]


def test_resized_copy_scales_images_boxes_and_parts(cub: Path, tmp_path: Path) -> None:
    copy = write_resized_copy(cub, 32, tmp_path / "CUB_200_2011-short32", progress=False)
    original, resized = read_cub_index(cub), read_cub_index(copy)
    np.testing.assert_allclose(resized.boxes, original.boxes * 32 / 48, atol=0.06)
    np.testing.assert_allclose(resized.parts[..., :2], original.parts[..., :2] * 32 / 48, atol=0.06)
    assert np.array_equal(resized.parts[..., 2], original.parts[..., 2])
    assert np.array_equal(resized.labels, original.labels)
    assert resized.class_names == original.class_names
    with Image.open(resized.image_path(0)) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    stamp = resized.image_path(0).stat().st_mtime_ns
    write_resized_copy(cub, 32, copy, progress=False)
    assert resized.image_path(0).stat().st_mtime_ns == stamp  # a finished copy is reused
    bigger = write_resized_copy(cub, 64, tmp_path / "big", progress=False)
    with Image.open(read_cub_index(bigger).image_path(0)) as image:
        assert image.size == (48, 48)  # never enlarged


def test_script_reports_problems_and_exits_1(cub: Path, tmp_path: Path, capsys) -> None:
    (cub / "classes.txt").unlink()
    shutil.rmtree(cub / "images" / sorted(p.name for p in (cub / "images").iterdir())[0])
    assert _script().main([str(cub), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "classes.txt is missing" in err and "absent from images/" in err
    assert "README" in err


def test_script_unpacks_checks_and_writes_the_copy(cub: Path, tmp_path: Path, capsys) -> None:
    archive = _tgz(cub, tmp_path / "CUB_200_2011.tgz")
    data = tmp_path / "data"
    assert _script().main([str(archive), "--out", str(data), "--decode", "--short-side", "40"]) == 0
    out = capsys.readouterr().out
    assert "usable - 6 images (4 train, 2 test), 2 classes, 15 parts" in out
    assert (data / "CUB_200_2011-short40" / "images.txt").is_file()


def test_decode_reports_missing_and_undecodable_images_at_once(cub: Path, capsys) -> None:
    """A truncated download: one listed image absent, another cut short. Both are reported by
    one run (before, the absent file stopped the check and the broken one waited a run)."""
    files = sorted((cub / "images").rglob("*.jpg"))
    files[0].unlink()
    files[2].write_bytes(files[2].read_bytes()[:100])
    (cub / "train_test_split.txt").write_text(
        (cub / "train_test_split.txt").read_text().replace("6 0", "6 2")
    )
    problems = cub_problems(cub, decode=True, progress=False)
    assert any("absent from images/" in p and files[0].name in p for p in problems)
    assert any("cannot decode image" in p and files[2].name in p for p in problems)
    assert any("is_training_image must be 0 or 1" in p for p in problems)
    assert _script().main([str(cub), "--decode"]) == 1
    err = capsys.readouterr().err
    assert "3 problem(s)" in err and files[0].name in err and files[2].name in err
