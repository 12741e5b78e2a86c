"""The CUB-200-2011 reader: the official layout, each quirk of real downloads, and geometry that
follows the image through resizing, cropping and flipping."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from labkit.data.birds import BirdTransform, CubDataset
from labkit.data.cub import CubError, check_cub, flip_permutation, read_cub_index
from labkit.data.images import open_rgb
from labkit.data.synthbirds import CUB_PARTS, SynthBirdsSpec, write_synthetic_birds
from labkit.data.transforms import to_display_imagenet

SPEC = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=1, image_size=48)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_birds(tmp_path_factory.mktemp("cub") / "CUB_200_2011", SPEC)


@pytest.fixture
def cub(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of a tiny CUB-layout folder to break."""
    return Path(shutil.copytree(pristine, tmp_path / "CUB_200_2011"))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _first_image(cub: Path) -> Path:
    return cub / "images" / _lines(cub / "images.txt")[0].split()[1]


# ---------------------------------------------------------------------------------------------
# the official layout


def test_reads_the_official_layout(cub: Path) -> None:
    index = read_cub_index(cub)
    assert len(index) == 9 and index.num_classes == 3
    assert index.image_ids.tolist() == list(range(1, 10))
    assert index.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # 1-based in the file
    assert index.split("train").tolist() == [0, 1, 3, 4, 6, 7]
    assert index.split("test").tolist() == [2, 5, 8]
    assert index.class_names[0].startswith("001.")
    assert index.part_names == CUB_PARTS and index.part_names[6] == "left eye"
    first_box = [float(v) for v in _lines(cub / "bounding_boxes.txt")[0].split()[1:]]
    np.testing.assert_allclose(index.boxes[0], first_box)
    assert index.parts.shape == (9, 15, 3)
    first_part = [float(v) for v in _lines(cub / "parts/part_locs.txt")[0].split()[2:]]
    np.testing.assert_allclose(index.parts[0, 0], first_part)
    assert check_cub(cub) == []


def test_flip_swaps_left_and_right_parts() -> None:
    perm = flip_permutation(CUB_PARTS)
    names = [CUB_PARTS[i] for i in perm]
    assert names[CUB_PARTS.index("left eye")] == "right eye"
    assert names[CUB_PARTS.index("right wing")] == "left wing"
    assert names[CUB_PARTS.index("beak")] == "beak"
    assert sorted(perm.tolist()) == list(range(15))


def test_unknown_split_name(cub: Path) -> None:
    with pytest.raises(ValueError, match="'train' or 'test'"):
        read_cub_index(cub).split("val")


# ---------------------------------------------------------------------------------------------
# images as real downloads have them


def _reload_first(cub: Path) -> torch.Tensor:
    dataset = CubDataset(read_cub_index(cub), "train", BirdTransform(32, 32, train=False))
    image, label = dataset[0]
    assert image.shape == (3, 32, 32) and label == 0
    return image


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grayscale_and_cmyk_jpegs_become_rgb(cub: Path, mode: str) -> None:
    path = _first_image(cub)
    Image.open(path).convert(mode).save(path, format="JPEG")
    image = _reload_first(cub)
    if mode == "L":  # three equal channels
        shown = to_display_imagenet(image)
        np.testing.assert_allclose(shown[..., 0], shown[..., 2], atol=1e-5)


@pytest.mark.parametrize("mode", ["P", "RGBA"])
def test_palette_and_rgba_pngs_become_rgb(cub: Path, mode: str) -> None:
    path = _first_image(cub)
    Image.open(path).convert(mode).save(path.with_suffix(".png"), format="PNG")
    lines = _lines(cub / "images.txt")
    lines[0] = lines[0].replace(".jpg", ".png")
    _write_lines(cub / "images.txt", lines)
    path.unlink()
    _reload_first(cub)


def test_png_bytes_behind_a_jpg_name_load(cub: Path) -> None:
    path = _first_image(cub)
    before = np.asarray(Image.open(path).convert("RGB"))
    Image.fromarray(before).save(path, format="PNG")  # the name still ends in .jpg
    image, factor = open_rgb(path, short_side=16)
    assert factor == 1.0 and np.array_equal(np.asarray(image), before)
    _reload_first(cub)


def test_a_truncated_image_names_its_file_even_in_a_worker(cub: Path) -> None:
    path = _first_image(cub)
    path.write_bytes(path.read_bytes()[:200])
    dataset = CubDataset(read_cub_index(cub), "train", BirdTransform(32, 32, train=False))
    with pytest.raises(ValueError, match=f"cannot decode image .*{path.name}.*prepare_cub"):
        dataset[0]
    loader = DataLoader(dataset, batch_size=2, num_workers=1)
    with pytest.raises(ValueError, match=path.name):
        next(iter(loader))


# ---------------------------------------------------------------------------------------------
# broken lists: an error naming the file or id and the remedy


def test_missing_list_file(cub: Path) -> None:
    (cub / "bounding_boxes.txt").unlink()
    with pytest.raises(CubError, match=r"bounding_boxes\.txt is missing(.|\n)*README"):
        read_cub_index(cub)


def test_truncated_list_file(cub: Path) -> None:
    text = (cub / "parts/part_locs.txt").read_text()
    (cub / "parts/part_locs.txt").write_text(text[: len(text) - 7])  # cut in the last line
    with pytest.raises(CubError) as caught:
        read_cub_index(cub)
    message = str(caught.value)
    assert "parts/part_locs.txt" in message and "truncated" in message
    assert "image id(s) 9" in message  # its last image lost a part


def test_listed_image_absent(cub: Path) -> None:
    path = _first_image(cub)
    path.unlink()
    absent = f"1 image.* absent from images/ \\(id 1: images/.*{path.name}"
    with pytest.raises(CubError, match=absent):
        read_cub_index(cub)
    read_cub_index(cub, check_files=False)  # lists alone still read


def test_id_in_one_list_and_not_another(cub: Path) -> None:
    _write_lines(cub / "bounding_boxes.txt", _lines(cub / "bounding_boxes.txt")[:-1])
    extra = _lines(cub / "train_test_split.txt") + ["10 1"]
    _write_lines(cub / "train_test_split.txt", extra)
    problems = check_cub(cub)
    assert "image id(s) 9 of images.txt missing from bounding_boxes.txt" in problems
    assert "train_test_split.txt lists image id(s) 10 that images.txt does not" in problems


def test_class_without_training_image(cub: Path) -> None:
    lines = _lines(cub / "train_test_split.txt")
    lines[3:5] = ["4 0", "5 0"]  # class 2's two training images moved to test
    _write_lines(cub / "train_test_split.txt", lines)
    with pytest.raises(CubError, match=r"002\..* have no training image"):
        read_cub_index(cub)


def test_every_problem_is_reported_at_once(cub: Path) -> None:
    (cub / "classes.txt").unlink()
    _first_image(cub).unlink()
    problems = check_cub(cub)
    assert any("classes.txt is missing" in p for p in problems)
    assert any("absent from images/" in p for p in problems)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CubError, match="is not a folder"):
        read_cub_index(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# geometry follows the image


def _marked_folder(cub: Path, size: tuple[int, int], mark: tuple[int, int], box) -> Path:
    """The first image replaced by a grey image of `size` with a red square at `mark`, which is
    also where parts 'left eye' and 'beak' are; the box as given (x, y, w, h)."""
    width, height = size
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    x, y = mark
    half = max(3, width // 50)  # a few pixels wide after resizing
    pixels[y - half : y + half + 1, x - half : x + half + 1] = (255, 0, 0)
    path = _first_image(cub)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    locs = _lines(cub / "parts/part_locs.txt")
    for p in range(1, 16):  # image 1's parts: only 'beak' (2) and 'left eye' (7) visible
        shown = p in (2, 7)
        locs[p - 1] = f"1 {p} {x if shown else 0} {y if shown else 0} {int(shown)}"
    _write_lines(cub / "parts/part_locs.txt", locs)
    boxes = _lines(cub / "bounding_boxes.txt")
    boxes[0] = "1 " + " ".join(str(v) for v in box)
    _write_lines(cub / "bounding_boxes.txt", boxes)
    return cub


def _red_centre(image: torch.Tensor) -> np.ndarray:
    shown = to_display_imagenet(image)
    red = (shown[..., 0] > 0.7) & (shown[..., 1] < 0.35) & (shown[..., 2] < 0.35)
    ys, xs = np.nonzero(red)
    assert len(xs), "the red mark left the image"
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # pixel centres


@pytest.mark.parametrize("crop_to_box", [False, True])
def test_parts_and_box_follow_resize_and_centre_crop(cub: Path, crop_to_box: bool) -> None:
    # 800 x 600 with resize 60: a JPEG decoded at 1/8 scale first
    _marked_folder(cub, (800, 600), (520, 250), (300, 100, 400, 300))
    transform = BirdTransform(resize=60, crop=48, train=False)
    dataset = CubDataset(read_cub_index(cub), "train", transform, crop_to_box, with_geometry=True)
    image, _, box, parts = dataset[0]
    left_eye, beak = CUB_PARTS.index("left eye"), CUB_PARTS.index("beak")
    np.testing.assert_allclose(parts[left_eye, :2], _red_centre(image), atol=1.5)
    np.testing.assert_allclose(parts[beak], parts[left_eye])
    assert parts[:, 2].sum() == 2
    if crop_to_box:  # the box filled the image before the centre crop
        scale = 60 / 300
        np.testing.assert_allclose(box, [0, 0, 48, 48], atol=1e-4)
        # 400 x 300 box -> 80 x 60, centre crop at x 16, y 6
        expected_eye = [(520 - 300) * scale - 16, (250 - 100) * scale - 6]
        np.testing.assert_allclose(parts[left_eye, :2], expected_eye, atol=1.5)
    else:
        scale = 60 / 600  # 800 x 600 -> 80 x 60, centre crop at x 16, y 6
        expected = [300 * scale - 16, 100 * scale - 6, 700 * scale - 16, 400 * scale - 6]
        np.testing.assert_allclose(box, np.clip(expected, 0, 48), atol=1e-4)


def test_flip_mirrors_coordinates_and_swaps_sides(cub: Path) -> None:
    _marked_folder(cub, (200, 150), (130, 60), (50, 20, 120, 100))
    index = read_cub_index(cub)
    train = CubDataset(index, "train", BirdTransform(64, 64, train=True), with_geometry=True)
    left_eye, right_eye = CUB_PARTS.index("left eye"), CUB_PARTS.index("right eye")
    flips = 0
    for seed in range(12):
        torch.manual_seed(seed)
        image, _, box, parts = train[0]
        flipped = parts[right_eye, 2] == 1
        flips += int(flipped)
        eye = right_eye if flipped else left_eye
        assert parts[left_eye if flipped else right_eye, 2] == 0
        np.testing.assert_allclose(parts[eye, :2], _red_centre(image), atol=1.5)
        assert 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 64
    assert 0 < flips < 12  # both cases seen


def test_crop_must_fit_the_resize() -> None:
    with pytest.raises(ValueError, match="crop <= resize"):
        BirdTransform(resize=32, crop=48, train=True)
