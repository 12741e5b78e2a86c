"""Image files as 8-bit RGB by a fixed rule for every mode (`to_rgb8`), opened one at a time
(`decode_image`, `open_rgb`, which decodes a JPEG at a reduced scale when it may), and a
`<split>/<class>/<file>` folder decoded once into a `TensorImageDataset` (ImageFolder's order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labkit.data.datasets import TensorImageDataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
REBUILD_MNIST = "delete it or rebuild the subset with data_prep/make_mnist_subset.py"
REPLACE_FILE = "replace or delete this file"


def list_image_folder(split_dir: Path) -> tuple[list[str], list[list[Path]]]:
    """Class names (sorted folder names) and each class's image files (sorted by name).

    Raises FileNotFoundError for a missing folder and ValueError for a folder without class
    folders or a class folder without images; each message names the folder.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"image folder {split_dir} not found; see data_prep/README.md")
    class_dirs = sorted(
        (d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    if not class_dirs:
        raise ValueError(
            f"{split_dir} has no class folders; expected {split_dir}/<class>/<image> "
            "(see data_prep/README.md)"
        )
    files = []
    for class_dir in class_dirs:
        images = sorted(
            f
            for f in class_dir.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not images:
            raise ValueError(
                f"class folder {class_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "add its images or delete the folder"
            )
        files.append(images)
    return [d.name for d in class_dirs], files


class UnconvertibleImageError(ValueError):
    """A decoded image whose mode or pixel values have no 8-bit RGB rule; the message says why."""


# modes whose colour Pillow's convert("RGB") gets right (TIFF gives YCbCr and LAB)
_PILLOW_RGB_MODES = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB"})
_ALPHA_MODES = frozenset({"LA", "PA", "RGBA"})  # straight (unassociated) alpha
_PREMULTIPLIED_MODES = frozenset({"La", "RGBa"})  # TIFF's associated alpha
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def _over_black(rgba: np.ndarray) -> np.ndarray:
    """Straight-alpha uint8 RGBA (H, W, 4) composited over black: RGB * alpha / 255, rounded."""
    colour, alpha = rgba[..., :3].astype(np.uint16), rgba[..., 3:].astype(np.uint16)
    return ((colour * alpha + 127) // 255).astype(np.uint8)  # 255 is odd: no ties to break


def _grey(values: np.ndarray) -> np.ndarray:
    """Grey levels (H, W), already 0..255, as uint8 RGB (H, W, 3)."""
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def _value_range(values: np.ndarray) -> tuple[float, float]:
    return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """A loaded PIL image as uint8 RGB (H, W, 3), by a fixed rule for each mode.

    - 1, L, P, RGB, RGBX, CMYK, YCbCr, LAB: Pillow's `convert("RGB")`.
    - Transparency (LA, PA, RGBA, or a transparent palette index or colour key in a 1, L, P,
      RGB or 16-bit file): composited over black, RGB * alpha / 255 rounded. The lab's digits
      are white on black (MNIST, the built-in digits), so a digit drawn on a transparent
      background keeps its black background and stays visible; compositing over white would
      hide a white digit, and dropping alpha would expose whatever colour the transparent
      pixels happen to hold (often white). (A black digit on a transparent background would
      vanish: flatten such files first.) torchvision's ImageFolder drops alpha instead.
    - La, RGBa (premultiplied alpha, from TIFF): already over black, so the colour is kept.
    - I;16, I;16B, I;16L, I;16N (16-bit): the full range 0..65535 maps to 0..255, value / 257
      rounded (65535 -> 255, 257 * k -> k), whatever range the file uses.
    - I (32-bit integer): values 0..255 are kept; otherwise values 0..65535 are treated as
      16-bit (older Pillow versions open 16-bit PNGs as I), so a 16-bit file holding only values
      up to 255 counts as 8-bit here; negative values or values above 65535 are refused.
    - F (float): values 0..1 are scaled by 255; otherwise values 0..255 are kept; rounded, a
      half-step overshoot allowed (e.g. -0.3 or 255.4 from resampling). Any other range, NaN
      or infinity is refused. An image whose largest value is at most 1 counts as 0..1.
    - Any other mode is refused. Refusals raise UnconvertibleImageError, naming the mode and
      the values found.
    """
    mode = image.mode
    transparent = image.info.get("transparency")
    if mode in _ALPHA_MODES or (mode in {"1", "L", "P", "RGB"} and transparent is not None):
        return _over_black(np.asarray(image.convert("RGBA")))
    if mode in _PILLOW_RGB_MODES:
        return np.asarray(image.convert("RGB"))
    if mode in _PREMULTIPLIED_MODES:
        return np.asarray(image)[..., :3] if mode == "RGBa" else _grey(np.asarray(image)[..., 0])
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        raw = np.asarray(image).astype(np.int64)
        low, high = _value_range(raw)
        if low < 0 or high > 65535:
            raise UnconvertibleImageError(
                f"integer values {low:g}..{high:g} fit neither 0..255 nor 16-bit 0..65535"
            )
        eight_bit = raw if mode == "I" and high <= 255 else (raw + 128) // 257  # rounded
        if isinstance(transparent, int):
            eight_bit = np.where(raw == transparent, 0, eight_bit)  # over black, as above
        return _grey(eight_bit)
    if mode == "F":
        values = np.asarray(image).astype(np.float64)
        if not np.isfinite(values).all():
            raise UnconvertibleImageError("float values include NaN or infinity")
        low, high = _value_range(values)
        if low >= -0.5 / 255 and high <= 1 + 0.5 / 255:
            values = values * 255
        elif low < -0.5 or high > 255.5:
            raise UnconvertibleImageError(
                f"float values {low:g}..{high:g} fit neither 0..1 nor 0..255"
            )
        return _grey(np.clip(np.rint(values), 0, 255))
    raise UnconvertibleImageError(f"no rule converts mode {mode} to 8-bit RGB")


def decode_image(path: Path, image_size: int | None, remedy: str = REBUILD_MNIST) -> np.ndarray:
    """One image file as uint8 RGB (H, W, 3), resized (antialiased) to `image_size` if given.

    Every mode is converted to 8-bit RGB by `to_rgb8`'s rule (16-bit and float files are
    scaled, transparency is composited over black). An undecodable file, or one whose mode or
    values have no rule, raises ValueError naming it, its mode if decoded, and `remedy`.
    """
    try:
        with Image.open(path) as image:
            image.load()  # decodes now: a truncated file fails here
            mode = image.mode
            pixels = to_rgb8(image)
    except UnconvertibleImageError as err:
        raise ValueError(f"cannot convert image {path} (mode {mode}): {err}; {remedy}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot decode image {path}: {err}; {remedy}") from err
    if image_size is not None and pixels.shape[:2] != (image_size, image_size):
        # PIL's bilinear filter widens with the scale factor: antialiased when shrinking
        rgb = Image.fromarray(np.ascontiguousarray(pixels))  # uint8 (H, W, 3): RGB
        pixels = np.asarray(rgb.resize((image_size, image_size), Image.Resampling.BILINEAR))
    return pixels


def open_rgb(
    path,
    short_side: int | None = None,
    region: tuple[float, float] | None = None,
    remedy: str = REPLACE_FILE,
) -> tuple[Image.Image, float]:
    """A file as an 8-bit RGB PIL image, and the scale from the file's pixels to the returned ones.

    Grayscale, CMYK, palette and RGBA images become RGB (`to_rgb8`'s rules); the format is read
    from the bytes, so a PNG named `.jpg` loads. A JPEG is decoded at the smallest DCT scale
    (1/2, 1/4, 1/8) that keeps the short side of `region` (width, height in the file's pixels;
    default the whole image) at least `short_side` pixels.

    Raises ValueError naming the file and `remedy` for a missing, truncated or undecodable
    image.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if short_side is not None and image.format == "JPEG":
                scale = short_side / max(1.0, min(region or (width, height)))
                image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
            image.load()  # decodes now: a truncated file fails here
            factor = image.size[0] / width
            rgb = Image.fromarray(to_rgb8(image))
    except UnconvertibleImageError as err:
        raise ValueError(f"cannot convert image {path}: {err}; {remedy}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot decode image {path}: {err}; {remedy}") from err
    return rgb, factor


def read_image_folder(
    split_dir: Path,
    image_size: int | None,
    per_class: int | None = None,
    remedy: str = REBUILD_MNIST,
) -> TensorImageDataset:
    """Decode `split_dir/<class>/<file>` once into a TensorImageDataset (no transform).

    Classes and files are sorted by name, so labels match torchvision's ImageFolder.
    Args:
        split_dir: the split folder, e.g. `data/mnist/train`.
        image_size: side of the square images returned (None keeps the files' size, which
            must then agree).
        per_class: keep only the first `per_class` files of each class (None keeps all).
        remedy: what an error about a bad file tells the user to do.
    """
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be at least 1 or None (all), got {per_class}")
    class_names, files = list_image_folder(split_dir)
    paths = [p for class_files in files for p in class_files[:per_class]]
    labels = [c for c, class_files in enumerate(files) for _ in class_files[:per_class]]
    arrays = [decode_image(p, image_size, remedy) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"images in {split_dir} differ in size {sorted(shapes)[:3]}; pass an image_size"
        )
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    return TensorImageDataset(
        images=images,
        labels=torch.tensor(labels, dtype=torch.int64),
        paths=tuple(paths),
        class_names=tuple(class_names),
    )
