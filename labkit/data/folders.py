"""Decode a `<split>/<class>/<file>` image folder once into tensors (ImageFolder's order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labkit.data.tensor_dataset import TensorImageDataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
REBUILD_MNIST = "delete it or rebuild the subset with data_prep/make_mnist_subset.py"


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


def decode_image(path: Path, image_size: int | None, remedy: str = REBUILD_MNIST) -> np.ndarray:
    """One image file as uint8 RGB (H, W, 3), resized (antialiased) to `image_size` if given.

    Grayscale, palette and RGBA files are converted to RGB; an undecodable file raises
    ValueError naming it and `remedy`.
    """
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")  # decodes now: a truncated file fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot decode image {path}: {err}; {remedy}") from err
    if image_size is not None and rgb.size != (image_size, image_size):
        # PIL's bilinear filter widens with the scale factor: antialiased when shrinking
        rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(rgb)


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
