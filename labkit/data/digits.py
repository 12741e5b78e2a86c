"""Built-in digits: scikit-learn's 1,797 bundled 8x8 scans written in the handout's MNIST layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from labkit.data.layout import LAYOUT_NAMES, is_complete, sample_per_class, write_split_layout

BUILTIN_DIGITS_VERSION = "labkit built-in digits v1 (train 100/class, seed 0, 32px, margin 4)"
TRAIN_PER_CLASS = 100  # the rest (797 scans) is the test split
SPLIT_SEED = 0
IMAGE_SIZE = 32  # the handout's CIFAR-style input size
MARGIN = 4  # black border around the digit, like MNIST's (20x20 box in 28x28)


def upscale_scan(scan: np.ndarray, size: int = IMAGE_SIZE, margin: int = MARGIN) -> np.ndarray:
    """An 8x8 scan (values 0..16, ink high) as a smooth uint8 `size`x`size` image, white on black.

    The scan fills its 8x8 box, so it is resized to `size - 2 * margin` and centred on black,
    as MNIST centres its 20x20 digit box in 28x28.
    """
    inner = size - 2 * margin
    image = Image.fromarray(scan.astype(np.float32) * (255.0 / 16.0))  # mode "F"
    big = np.asarray(image.resize((inner, inner), Image.Resampling.BICUBIC))
    out = np.zeros((size, size), dtype=np.uint8)
    out[margin : margin + inner, margin : margin + inner] = np.clip(np.rint(big), 0, 255)
    return out  # (size, size)


def write_builtin_digits(root: Path) -> Path:
    """Write the built-in digits under `root` once (train 100/class, test 797); return `root`.

    Layout: `root/{train,test}/<digit>/<id>.png` (32x32 RGB) and `root/{train,test}.csv` with
    columns `id,name,class`. Deterministic; a complete folder is left untouched.
    Used in: 02_densenet_resnext, 03_facenet_knn (through `load_digits_data`).
    """
    root = Path(root)
    if is_complete(root, BUILTIN_DIGITS_VERSION):
        return root
    from sklearn.datasets import load_digits  # here: importing scikit-learn takes 1-2 s

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    images = np.stack([upscale_scan(scan) for scan in digits.images])  # (1797, 32, 32)
    train_idx, test_idx = sample_per_class(labels, TRAIN_PER_CLASS, SPLIT_SEED)
    splits = {
        "train": (images[train_idx], labels[train_idx]),
        "test": (images[test_idx], labels[test_idx]),
    }
    # a folder with only layout entries and no marker is an interrupted write: redo it
    redo = root.is_dir() and {p.name for p in root.iterdir()} <= set(LAYOUT_NAMES)
    return write_split_layout(root, splits, BUILTIN_DIGITS_VERSION, overwrite=redo)
