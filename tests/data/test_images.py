"""Image files as 8-bit RGB: a folder decoded once (ImageFolder's order, resizing, bad files and
folders), and `decode_image` per Pillow mode (the right 8-bit RGB image, or a refusal that says
why)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import ImageFolder

from labkit.data.images import UnconvertibleImageError, decode_image, read_image_folder, to_rgb8


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


# ---------------------------------------------------------------------------------------------
# decode_image per Pillow mode

SIZE = 16
SQUARE = (slice(4, 12), slice(4, 12))  # the digit-like bright square; the rest is background


def _pattern(background: object, square: object, dtype: type = np.uint8, channels: int = 0):
    """A SIZE x SIZE (x channels) array: `background` with a `square` in the middle."""
    shape = (SIZE, SIZE, channels) if channels else (SIZE, SIZE)
    pixels = np.empty(shape, dtype=dtype)
    pixels[...] = background
    pixels[SQUARE] = square
    return pixels


def _rgb(background: tuple[int, int, int], square: tuple[int, int, int]) -> np.ndarray:
    return _pattern(background, square, channels=3)


def _save(image: Image.Image, path: Path, mode: str, **params: object) -> Path:
    """Save `image` and check that Pillow reads the file back in `mode` (the mode under test)."""
    image.save(path, **params)
    with Image.open(path) as back:
        assert back.mode == mode, f"{path.name} reads back as {back.mode}, not {mode}"
    return path


def _decoded(path: Path, image_size: int | None = None) -> np.ndarray:
    out = decode_image(path, image_size)
    assert out.dtype == np.uint8 and out.shape == (image_size or SIZE, image_size or SIZE, 3)
    return out


# 8-bit modes: Pillow's own conversion


def test_mode_1(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(0, 255)).convert("1")
    path = _save(image, tmp_path / "a.png", "1")
    np.testing.assert_array_equal(_decoded(path), _rgb((0, 0, 0), (255, 255, 255)))


def test_mode_l(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_pattern(20, 230)), tmp_path / "a.png", "L")
    np.testing.assert_array_equal(_decoded(path), _rgb((20, 20, 20), (230, 230, 230)))


def test_mode_rgb(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_rgb((1, 2, 3), (250, 200, 150))), tmp_path / "a.png", "RGB")
    np.testing.assert_array_equal(_decoded(path), _rgb((1, 2, 3), (250, 200, 150)))


def _palette_image() -> Image.Image:
    image = Image.fromarray(_pattern(0, 1), mode="P")
    image.putpalette([255, 255, 255, 250, 240, 230])  # index 0 white, 1 off-white
    return image


def test_mode_p(tmp_path: Path) -> None:
    path = _save(_palette_image(), tmp_path / "a.png", "P")
    np.testing.assert_array_equal(_decoded(path), _rgb((255, 255, 255), (250, 240, 230)))


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_mode_p_transparent_index_is_black(tmp_path: Path, suffix: str) -> None:
    # the white background is transparent: composited over black, the digit stays visible
    path = _save(_palette_image(), tmp_path / f"a{suffix}", "P", transparency=0)
    np.testing.assert_array_equal(_decoded(path), _rgb((0, 0, 0), (250, 240, 230)))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_transparent_colour_key_is_black(tmp_path: Path, mode: str) -> None:
    image = Image.fromarray(_pattern(255, 180)).convert(mode)
    key = 255 if mode == "L" else (255, 255, 255)
    path = _save(image, tmp_path / "a.png", mode, transparency=key)
    np.testing.assert_array_equal(_decoded(path), _rgb((0, 0, 0), (180, 180, 180)))


def test_mode_cmyk(tmp_path: Path) -> None:
    cmyk = _pattern((0, 0, 0, 255), (0, 0, 0, 0), channels=4)  # black ink around, paper square
    cmyk[4, 4] = (255, 0, 0, 0)  # pure cyan
    path = _save(Image.fromarray(cmyk, mode="CMYK"), tmp_path / "a.tiff", "CMYK")
    expected = _rgb((0, 0, 0), (255, 255, 255))
    expected[4, 4] = (0, 255, 255)
    np.testing.assert_array_equal(_decoded(path), expected)


# alpha: composited over black (the digits' background)


def test_mode_la_composites_over_black(tmp_path: Path) -> None:
    # white everywhere, but only the square is opaque: dropping alpha would give a white image
    la = _pattern((255, 0), (255, 255), channels=2)
    la[4, 4] = (200, 128)  # half transparent: 200 * 128 / 255 = 100.4
    path = _save(Image.fromarray(la, mode="LA"), tmp_path / "a.png", "LA")
    expected = _rgb((0, 0, 0), (255, 255, 255))
    expected[4, 4] = 100
    np.testing.assert_array_equal(_decoded(path), expected)


def test_mode_rgba_composites_over_black(tmp_path: Path) -> None:
    rgba = _pattern((255, 255, 255, 0), (200, 100, 50, 255), channels=4)
    rgba[4, 4] = (200, 100, 50, 51)  # alpha 0.2
    path = _save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "a.png", "RGBA")
    expected = _rgb((0, 0, 0), (200, 100, 50))
    expected[4, 4] = (40, 20, 10)
    np.testing.assert_array_equal(_decoded(path), expected)


def test_mode_pa_composites_over_black(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(0, 1), mode="P")
    image.putpalette([255, 255, 255, 250, 240, 230])
    alpha = Image.fromarray(_pattern(0, 255))
    image = image.convert("PA")
    image.putalpha(alpha)
    path = _save(image, tmp_path / "a.tiff", "PA")
    np.testing.assert_array_equal(_decoded(path), _rgb((0, 0, 0), (250, 240, 230)))


# 16-bit, 32-bit integer and float: scaled to 0..255 by a documented rule

SIXTEEN_BIT = [0, 128, 129, 257 * 100, 257 * 128, 65535]  # -> 0, 0, 1, 100, 128, 255
SIXTEEN_BIT_AS_8 = [0, 0, 1, 100, 128, 255]


def _sixteen_bit_pattern(dtype: str) -> np.ndarray:
    pixels = _pattern(0, 65535, dtype=np.dtype(dtype))
    pixels[0, : len(SIXTEEN_BIT)] = SIXTEEN_BIT
    return pixels


def _sixteen_bit_expected() -> np.ndarray:
    expected = _rgb((0, 0, 0), (255, 255, 255))
    expected[0, : len(SIXTEEN_BIT)] = np.array(SIXTEEN_BIT_AS_8)[:, None]
    return expected


@pytest.mark.parametrize(
    ("mode", "suffix"), [("I;16", ".png"), ("I;16", ".tiff"), ("I;16B", ".tiff")]
)
def test_16_bit_scales_full_range(tmp_path: Path, mode: str, suffix: str) -> None:
    # from raw bytes: Pillow's own convert("I;16B") clips to 255
    pixels = _sixteen_bit_pattern("<u2" if mode == "I;16" else ">u2")
    image = Image.frombytes(mode, (SIZE, SIZE), pixels.tobytes())
    path = _save(image, tmp_path / f"a{suffix}", mode)
    np.testing.assert_array_equal(_decoded(path), _sixteen_bit_expected())


def test_16_bit_digit_keeps_its_contrast(tmp_path: Path) -> None:
    # the real-world fault: a dim-ish 16-bit digit used to load almost white, with no digit
    image = Image.fromarray(_pattern(2570, 51400, dtype=np.uint16))  # 10 and 200 in 8 bits
    path = _save(image, tmp_path / "a.png", "I;16")
    np.testing.assert_array_equal(_decoded(path), _rgb((10, 10, 10), (200, 200, 200)))


def test_16_bit_transparent_key_is_black(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(65535, 51400, dtype=np.uint16))
    path = _save(image, tmp_path / "a.png", "I;16", transparency=65535)
    np.testing.assert_array_equal(_decoded(path), _rgb((0, 0, 0), (200, 200, 200)))


def test_16_bit_resized(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(65535, 65535, dtype=np.uint16))
    path = _save(image, tmp_path / "a.png", "I;16")
    assert (_decoded(path, image_size=8) == 255).all()


def test_mode_i_within_8_bits_is_kept(tmp_path: Path) -> None:
    image = Image.fromarray(_pattern(3, 255, dtype=np.int32))
    path = _save(image, tmp_path / "a.tiff", "I")
    np.testing.assert_array_equal(_decoded(path), _rgb((3, 3, 3), (255, 255, 255)))


def test_mode_i_within_16_bits_is_scaled_as_16_bit(tmp_path: Path) -> None:
    image = Image.fromarray(_sixteen_bit_pattern("<i4"))
    path = _save(image, tmp_path / "a.tiff", "I")
    np.testing.assert_array_equal(_decoded(path), _sixteen_bit_expected())


@pytest.mark.parametrize(("low", "high"), [(0, 70000), (-5, 200)])
def test_mode_i_outside_16_bits_is_refused(tmp_path: Path, low: int, high: int) -> None:
    path = _save(Image.fromarray(_pattern(low, high, dtype=np.int32)), tmp_path / "a.tiff", "I")
    message = rf"image {re.escape(str(path))} \(mode I\).*{low}\.\.{high}.*make_mnist_subset"
    with pytest.raises(ValueError, match=message):
        decode_image(path, None)


def test_mode_f_in_0_1_is_scaled(tmp_path: Path) -> None:
    pixels = _pattern(0.0, 1.0, dtype=np.float32)
    pixels[0, :3] = (0.2, 0.5, 0.999)  # 51, 127.5 -> 128, 254.7 -> 255
    path = _save(Image.fromarray(pixels), tmp_path / "a.tiff", "F")
    expected = _rgb((0, 0, 0), (255, 255, 255))
    expected[0, :3] = np.array([51, 128, 255])[:, None]
    np.testing.assert_array_equal(_decoded(path), expected)


def test_mode_f_in_0_255_is_rounded(tmp_path: Path) -> None:
    pixels = _pattern(0.0, 254.6, dtype=np.float32)
    pixels[0, :2] = (100.4, 1.5)
    path = _save(Image.fromarray(pixels), tmp_path / "a.tiff", "F")
    expected = _rgb((0, 0, 0), (255, 255, 255))
    expected[0, :2] = np.array([100, 2])[:, None]
    np.testing.assert_array_equal(_decoded(path), expected)


@pytest.mark.parametrize(("low", "high"), [(-3.0, 1.0), (0.0, 300.0)])
def test_mode_f_out_of_range_is_refused(tmp_path: Path, low: float, high: float) -> None:
    pixels = _pattern(low, high, dtype=np.float32)
    path = _save(Image.fromarray(pixels), tmp_path / "a.tiff", "F")
    message = rf"image {re.escape(str(path))} \(mode F\).*{low:g}\.\.{high:g}.*delete it"
    with pytest.raises(ValueError, match=message):
        decode_image(path, None, remedy="delete it")


def test_mode_f_not_a_number_is_refused(tmp_path: Path) -> None:
    pixels = _pattern(0.0, 1.0, dtype=np.float32)
    pixels[0, 0] = np.nan
    path = _save(Image.fromarray(pixels), tmp_path / "a.tiff", "F")
    with pytest.raises(ValueError, match=rf"image {re.escape(str(path))} \(mode F\).*NaN"):
        decode_image(path, None)


def test_refusal_stops_read_image_folder(tmp_path: Path) -> None:
    (tmp_path / "train" / "0").mkdir(parents=True)
    Image.fromarray(_pattern(0, 255)).save(tmp_path / "train" / "0" / "a.png")
    bad = tmp_path / "train" / "0" / "b.tiff"
    _save(Image.fromarray(_pattern(0.0, 1000.0, dtype=np.float32)), bad, "F")
    with pytest.raises(ValueError, match=rf"image {re.escape(str(bad))} \(mode F\)"):
        read_image_folder(tmp_path / "train", image_size=None)


def test_mode_without_a_rule_is_refused() -> None:
    # no file format stores HSV; an image in a mode without a rule is refused, not guessed at
    with pytest.raises(UnconvertibleImageError, match="HSV"):
        to_rgb8(Image.new("HSV", (2, 2)))
