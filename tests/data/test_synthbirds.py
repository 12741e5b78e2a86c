"""The synthetic birds: deterministic, written once, fine-grained, with true boxes and parts."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labkit.atomic import MARKER
from labkit.data.cub import read_cub_index
from labkit.data.synthbirds import (
    CUB_PARTS,
    MIN_ATTRIBUTE_DIFFERENCE,
    Species,
    SynthBirdsSpec,
    draw_bird,
    species_list,
    write_synthetic_birds,
)

SPEC = SynthBirdsSpec(num_classes=3, train_per_class=2, test_per_class=2, image_size=64)


def _attributes(species) -> tuple:
    return (species.beak_shape, species.beak_colour, species.crown, species.breast,
            species.wing_bars, species.tail)  # fmt: skip


def test_species_differ_in_two_attributes_and_tasks_share_none() -> None:
    birds, source = species_list("birds", 60), species_list("source", 60)
    every = [_attributes(s) for s in birds + source]
    assert len(set(every)) == 120
    for a, b in itertools.combinations(every, 2):
        assert sum(x != y for x, y in zip(a, b, strict=True)) >= MIN_ATTRIBUTE_DIFFERENCE
    assert species_list("birds", 5) == birds[:5]  # a smaller profile keeps the same species
    with pytest.raises(ValueError, match="at most"):
        species_list("birds", 10_000)
    with pytest.raises(ValueError, match="'birds' or 'source'"):
        species_list("dogs", 1)


@pytest.mark.parametrize(
    "change",
    [{"beak_shape": "long"}, {"beak_colour": "yellow"}, {"crown": "red"}, {"breast": "white"},
     {"wing_bars": 2}, {"tail": "forked"}],
)  # fmt: skip
def test_one_attribute_changes_a_small_region_inside_the_box(change: dict) -> None:
    """Same random state (background, pose, body colour), one attribute changed: the pixels
    that differ are few (under 2% of the image) and all lie on the birds."""
    base = Species("short", "black", "plain", "plain", 0, "rounded")
    for seed in range(4):
        a, box_a, _ = draw_bird(base, np.random.default_rng(seed), 128)
        b, box_b, _ = draw_bird(replace(base, **change), np.random.default_rng(seed), 128)
        differ = np.abs(np.asarray(a, int) - np.asarray(b, int)).sum(axis=2) > 30
        assert 0 < differ.mean() < 0.02, differ.mean()
        ys, xs = np.nonzero(differ)
        x1, y1 = np.minimum(box_a[:2], box_b[:2])  # the two birds' boxes together
        x2, y2 = np.maximum(box_a[:2] + box_a[2:], box_b[:2] + box_b[2:])
        assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2
        assert ys.min() >= y1 - 2 and ys.max() <= y2 + 2


def test_parts_lie_on_the_bird_and_the_far_side_is_hidden() -> None:
    species = species_list("birds", 1)[0]
    sides = set()
    for seed in range(12):
        image, box, parts = draw_bird(species, np.random.default_rng(seed), 96)
        x, y, w, h = box
        visible = parts[:, 2] == 1
        assert visible.sum() >= 11
        assert (parts[visible, 0] >= x - 1).all() and (parts[visible, 0] <= x + w + 1).all()
        assert (parts[visible, 1] >= y - 1).all() and (parts[visible, 1] <= y + h + 1).all()
        left, right = parts[CUB_PARTS.index("left eye"), 2], parts[CUB_PARTS.index("right eye"), 2]
        assert left + right == 1  # one eye seen from the side
        sides.add("left" if left else "right")
        wing = CUB_PARTS.index(f"{'left' if left else 'right'} wing")
        assert parts[wing, 2] == 1  # the near wing with the near eye
    assert sides == {"left", "right"}  # both facing directions drawn


def test_written_once_deterministic_and_readable(tmp_path: Path) -> None:
    first = write_synthetic_birds(tmp_path / "a", SPEC)
    second = write_synthetic_birds(tmp_path / "b", SPEC)
    for name in ("images.txt", "bounding_boxes.txt", "parts/part_locs.txt"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    index = read_cub_index(first)
    assert (len(index), index.num_classes, int(index.is_train.sum())) == (12, 3, 6)
    assert (first / MARKER).read_text().strip() == SPEC.version
    image = first / "images" / str(index.files[0])
    assert (first / "images" / str(index.files[0])).read_bytes() == (
        second / "images" / str(index.files[0])
    ).read_bytes()
    stamp = image.stat().st_mtime_ns
    write_synthetic_birds(first, SPEC)
    assert image.stat().st_mtime_ns == stamp  # reused, not redrawn


def test_refuses_a_folder_labkit_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not written by labkit"):
        write_synthetic_birds(tmp_path / "mine", SPEC)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_another_spec_replaces_an_older_labkit_write(tmp_path: Path) -> None:
    write_synthetic_birds(tmp_path / "set", SPEC)
    bigger = SynthBirdsSpec(num_classes=4, train_per_class=1, test_per_class=1, image_size=32)
    write_synthetic_birds(tmp_path / "set", bigger)
    assert read_cub_index(tmp_path / "set").num_classes == 4
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no partial folder left
