"""decode_image per Pillow mode: the right 8-bit RGB image, or a refusal that says why."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data.folders import UnconvertibleImageError, decode_image, read_image_folder, to_rgb8

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
