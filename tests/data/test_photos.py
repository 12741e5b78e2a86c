"""labkit.data.photos: a photo folder split by class in memory, and the handout's split.py
(train/val class folders, class_idx.json)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from labkit.atomic import MARKER
from labkit.data.photos import (
    CLASS_INDEX_FILE,
    find_photo_folder,
    load_photo_folder,
    read_class_index,
    split_class_folder,
    synthetic_photo_folder,
    write_class_index,
)
from labkit.data.synthbirds import SynthBirdsSpec

SIZES = {"daisy": 5, "roses": 3, "tulips": 10}  # images per class


def _write_photos(root: Path, sizes: dict[str, int]) -> Path:
    """Tiny distinct JPEGs: root/<class>/<class>_<k>.jpg, plus a non-image file to ignore."""
    for c, (name, count) in enumerate(sizes.items()):
        (root / name).mkdir(parents=True)
        for k in range(count):
            pixels = np.full((6, 6, 3), (40 * c, 20 * k, 7), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{k}.jpg")
    (root / "LICENSE.txt").write_text("flower_photos has one\n")
    return root


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return _write_photos(tmp_path / "flower_photos", SIZES)


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: (sha256 of a file's bytes or "dir", mtime in ns)."""
    state = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (digest, path.stat().st_mtime_ns)
    return state


def _names(folder: Path) -> dict[str, set[str]]:
    return {d.name: {f.name for f in d.iterdir()} for d in sorted(folder.iterdir())}


def test_counts_per_class_and_files_on_disk(photos: Path, tmp_path: Path) -> None:
    split = split_class_folder(photos, tmp_path / "split", val_fraction=0.2, seed=0)
    # val = round(0.2 n), at least one, at least one left for training: 5 -> 1, 3 -> 1, 10 -> 2
    assert split.counts["val"].to_dict() == {"daisy": 1, "roses": 1, "tulips": 2}
    assert split.counts["train"].to_dict() == {"daisy": 4, "roses": 2, "tulips": 8}
    assert split.counts.index.name == "class" and list(split.counts.columns) == ["train", "val"]
    assert split.class_names == ("daisy", "roses", "tulips")
    assert (split.train, split.val) == (tmp_path / "split/train", tmp_path / "split/val")
    train, val = _names(split.train), _names(split.val)
    for name, count in SIZES.items():
        assert len(train[name]) == split.counts.loc[name, "train"]
        assert len(val[name]) == split.counts.loc[name, "val"]
        assert train[name] | val[name] == {f"{name}_{k}.jpg" for k in range(count)}
        assert not train[name] & val[name]


def test_at_least_one_either_side(tmp_path: Path) -> None:
    photos = _write_photos(tmp_path / "p", {"a": 2, "b": 4})
    split = split_class_folder(photos, tmp_path / "s", val_fraction=0.9, seed=0)
    assert split.counts.to_dict("index") == {
        "a": {"train": 1, "val": 1},
        "b": {"train": 1, "val": 3},
    }
    split = split_class_folder(photos, tmp_path / "s2", val_fraction=0.01, seed=0)
    assert split.counts["val"].tolist() == [1, 1]


def test_seed_repeats_and_varies(photos: Path, tmp_path: Path) -> None:
    first = split_class_folder(photos, tmp_path / "s0", val_fraction=0.5, seed=0)
    again = split_class_folder(photos, tmp_path / "s0-again", val_fraction=0.5, seed=0)
    other = split_class_folder(photos, tmp_path / "s1", val_fraction=0.5, seed=1)
    assert _names(first.val) == _names(again.val) and _names(first.train) == _names(again.train)
    assert _names(first.val) != _names(other.val)


def test_links_or_copies_identical_and_source_untouched(photos: Path, tmp_path: Path) -> None:
    before = _snapshot(photos)
    split = split_class_folder(photos, tmp_path / "split")
    for folder in (split.train, split.val):
        for file in folder.rglob("*.jpg"):
            original = photos / file.parent.name / file.name
            assert file.read_bytes() == original.read_bytes()
            assert os.path.samefile(file, original) or file.stat().st_nlink == 1
    assert _snapshot(photos) == before
    assert not (photos / CLASS_INDEX_FILE).exists()


def test_copies_when_links_fail(photos: Path, tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    before = _snapshot(photos)
    split = split_class_folder(photos, tmp_path / "split")
    files = list(split.train.rglob("*.jpg")) + list(split.val.rglob("*.jpg"))
    assert len(files) == sum(SIZES.values())
    for file in files:
        original = photos / file.parent.name / file.name
        assert not os.path.samefile(file, original)
        assert file.read_bytes() == original.read_bytes()
    assert _snapshot(photos) == before


def test_class_index_file(photos: Path, tmp_path: Path) -> None:
    split = split_class_folder(photos, tmp_path / "split")
    assert split.class_index == tmp_path / "split" / CLASS_INDEX_FILE
    assert json.loads(split.class_index.read_text()) == {"0": "daisy", "1": "roses", "2": "tulips"}
    assert read_class_index(split.class_index) == split.class_names
    # the same order as torchvision's ImageFolder
    assert tuple(ImageFolder(split.train).classes) == split.class_names


def test_second_call_reuses(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    first = split_class_folder(photos, out, val_fraction=0.3, seed=2)
    marker = (out / MARKER).stat()
    second = split_class_folder(photos, out, val_fraction=0.3, seed=2)
    assert (out / MARKER).stat().st_ino == marker.st_ino  # not rewritten
    assert second.class_names == first.class_names
    assert second.counts.equals(first.counts)
    assert "val_fraction 0.3, seed 2, 18 files" in (out / MARKER).read_text()


@pytest.mark.parametrize("change", [{"seed": 1}, {"val_fraction": 0.5}, {"extra_file": True}])
def test_mismatched_second_call_raises(photos: Path, tmp_path: Path, change: dict) -> None:
    out = tmp_path / "split"
    split_class_folder(photos, out)
    before = _snapshot(out)
    if change.pop("extra_file", False):
        Image.new("RGB", (4, 4)).save(photos / "daisy" / "new.jpg")
    with pytest.raises(FileExistsError, match="delete it or choose another out") as err:
        split_class_folder(photos, out, **change)
    assert str(out) in str(err.value)
    assert _snapshot(out) == before  # left as it was


def test_out_with_foreign_files_raises(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="delete it or choose another out"):
        split_class_folder(photos, out)
    assert (out / "notes.txt").read_text() == "mine"


def _add_files(folder: Path, names: list[str]) -> list[Path]:
    """Small images (a GIF too: Pillow writes one) and a text file under `folder`."""
    paths = []
    for name in names:
        path = folder / name
        if path.suffix == ".txt":
            path.write_text("notes\n")
        else:
            Image.fromarray(np.full((6, 6, 3), len(paths) * 9, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_split_counts_and_copies_only_what_the_loader_reads(tmp_path: Path, capsys) -> None:
    # flower_photos-like folders with GIFs (which ImageFolder skips) and a stray text file:
    # irises' validation share drawn from all 12 files would be GIFs alone, and the loader
    # would refuse the val folder ("Found no valid file for the classes irises")
    photos = _write_photos(tmp_path / "photos", {"daisy": 4, "irises": 2})
    skipped = _add_files(photos / "daisy", ["d.gif", "readme.txt"])
    skipped += _add_files(photos / "irises", [f"i{k}.gif" for k in range(10)])
    _add_files(photos / "irises", ["grey.pgm"])  # read by ImageFolder, so part of the split
    split = split_class_folder(photos, tmp_path / "split", val_fraction=0.25, seed=0)
    for name, folder in (("train", split.train), ("val", split.val)):
        data = ImageFolder(folder)  # raises for a class of no readable file
        counts = np.bincount(data.targets, minlength=len(data.classes))
        assert data.classes == list(split.class_names)
        assert counts.tolist() == split.counts[name].tolist()
    assert split.counts.to_dict("index") == {
        "daisy": {"train": 3, "val": 1},
        "irises": {"train": 2, "val": 1},
    }
    assert sorted(split.left_out) == sorted(skipped)
    assert not list(split.train.rglob("*.gif")) + list(split.val.rglob("*.txt"))
    note = capsys.readouterr().out
    assert "12 files" in note and "left out" in note and "d.gif" in note


def test_class_of_files_the_loader_cannot_read_is_named(tmp_path: Path) -> None:
    photos = _write_photos(tmp_path / "photos", {"daisy": 3})
    (photos / "gifs").mkdir()
    _add_files(photos / "gifs", ["a.gif", "b.gif"])
    with pytest.raises(ValueError, match=r"(?s)gifs holds no image the loader reads.*a\.gif"):
        split_class_folder(photos, tmp_path / "split")
    assert not (tmp_path / "split").exists()
    with pytest.raises(ValueError, match=r"gifs holds no image the loader reads"):
        load_photo_folder(photos, resize=8, crop=8)  # not torchvision's error


def test_class_with_one_image_is_named(tmp_path: Path) -> None:
    photos = _write_photos(tmp_path / "p", {"daisy": 3, "lonely": 1})
    with pytest.raises(ValueError, match=r"lonely has 1 image"):
        split_class_folder(photos, tmp_path / "split")
    assert not (tmp_path / "split").exists()


def test_source_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        split_class_folder(tmp_path / "nowhere", tmp_path / "split")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.jpg")
    with pytest.raises(ValueError, match="flat has no class folders"):
        split_class_folder(tmp_path / "flat", tmp_path / "split")


def test_out_inside_source_refused(photos: Path) -> None:
    with pytest.raises(ValueError, match="outside the source"):
        split_class_folder(photos, photos / "split")


def test_bad_fraction(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_class_folder(photos, tmp_path / "split", val_fraction=1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot read class index"),
        ('["daisy", "roses"]', "not a non-empty"),
        ("{}", "not a non-empty"),
        ('{"1": "daisy", "2": "roses"}', r"expected '0'..'1'"),
        ('{"0": "daisy", "00": "roses"}', r"expected '0'..'1'"),
        ('{"0": "daisy", "1": 7}', "not strings"),
    ],
)
def test_read_class_index_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / CLASS_INDEX_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_class_index(path)
    assert str(path) in str(err.value)


def test_read_class_index_missing_and_order(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="class_idx.json not found"):
        read_class_index(tmp_path / CLASS_INDEX_FILE)
    names = [f"c{i}" for i in range(12)]  # "10" sorts before "2" as text
    path = tmp_path / CLASS_INDEX_FILE
    path.write_text(json.dumps({str(i): n for i, n in reversed(list(enumerate(names)))}))
    assert read_class_index(path) == tuple(names)
    assert read_class_index(write_class_index(path, names[:3])) == ("c0", "c1", "c2")


def test_synthetic_photo_folder_splits(tmp_path: Path) -> None:
    spec = SynthBirdsSpec(num_classes=2, train_per_class=2, test_per_class=1, image_size=32)
    images = synthetic_photo_folder(spec, root=tmp_path / "data")
    assert images.name == "images" and images.is_relative_to(tmp_path / "data" / "builtin")
    classes = sorted(d.name for d in images.iterdir())
    assert len(classes) == 2 and classes[0].startswith("001.")
    assert all(len(list((images / c).glob("*.jpg"))) == 3 for c in classes)
    assert synthetic_photo_folder(spec, root=tmp_path / "data") == images  # written once
    split = split_class_folder(images, tmp_path / "split", val_fraction=0.2)
    assert split.class_names == tuple(classes)
    assert split.counts.to_dict("list") == {"train": [2, 2], "val": [1, 1]}


def test_find_photo_folder(tmp_path: Path) -> None:
    assert find_photo_folder(root=tmp_path) is None
    (tmp_path / "flower_photos").mkdir()
    (tmp_path / "flower_photos" / "LICENSE.txt").write_text("")
    assert find_photo_folder(root=tmp_path) is None  # no class folders
    (tmp_path / "flower_photos" / "daisy").mkdir()
    assert find_photo_folder(root=tmp_path) == tmp_path / "flower_photos"
    (tmp_path / "other").write_text("a file")
    assert find_photo_folder("other", root=tmp_path) is None


def test_command_line_script(photos: Path, tmp_path: Path, capsys) -> None:
    script = Path(__file__).resolve().parents[2] / "data_prep" / "split_photos.py"
    spec = importlib.util.spec_from_file_location("split_photos", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "split"
    assert module.main([str(photos), "--out", str(out), "--val-fraction", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "tulips" in printed and str(out / CLASS_INDEX_FILE) in printed
    assert "train 14, val 4 images" in printed
    assert module.main([str(photos), "--out", str(out), "--seed", "3"]) == 1
    assert "delete it or choose another out" in capsys.readouterr().err
    assert module.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "nowhere" in capsys.readouterr().err


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
