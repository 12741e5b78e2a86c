"""Synthetic birds: a seeded generator written in the CUB-200-2011 layout, true boxes and parts.

Fine-grained by construction. A species is a combination of six small local attributes, three
on the head and three on the body: beak shape, beak colour, crown colour, breast colour, wing
bars and tail shape; any two species differ in at least two of them. Within every species, the
body and head colours, the pose (facing left or right, tilt), the scale, the position and a
cluttered background vary from image to image, and the clutter reuses the attribute colours,
so the whole image's colour does not give the species away while the beak, crown, breast, wing
and tail do. (The breast is coloured by the species, or a lighter shade of the varying body.)

Each image comes with its bounding box and CUB's 15 part locations (a part on the far side of
the bird, its other eye or wing, is marked not visible), computed from the same geometry that
drew it. Two disjoint sets of species are offered: the lab's ("birds") and a "source" task for
pretraining a backbone when ImageNet weights are absent (no species in common).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from labkit.atomic import write_once

GENERATOR_VERSION = 3  # bump when the drawing changes: written sets are then redrawn
# v3: the eye-ring attribute became the breast's colour, so that what tells species apart is
# spread over the bird (RESULTS.md, lab 05: a class activation map then finds the whole bird)
CUB_PARTS = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
    "nape", "right eye", "right leg", "right wing", "tail", "throat",
)  # fmt: skip
SUPERSAMPLE = 2  # drawn at twice the size, then reduced: smooth edges

BEAK_SHAPES = ("short", "long", "hooked", "thick")
BEAK_COLOURS = {"black": (25, 25, 25), "yellow": (240, 200, 30), "orange": (235, 110, 20),
                "pink": (225, 150, 160)}  # fmt: skip
CROWNS = {"plain": None, "red": (210, 30, 30), "yellow": (245, 215, 40), "blue": (40, 90, 220),
          "black": (20, 20, 20)}  # fmt: skip
# None: the breast is a lighter shade of the body, whose colour varies within a species
BREASTS = {"plain": None, "white": (250, 250, 250), "yellow": (250, 220, 60)}
WING_BARS = (0, 1, 2)
TAILS = ("forked", "rounded", "pointed")
BODY_COLOURS = (
    (120, 85, 60), (140, 140, 135), (110, 115, 60), (95, 110, 140), (190, 160, 115),
    (150, 75, 45), (80, 85, 95), (200, 195, 180),
)  # fmt: skip
BACKGROUNDS = ((170, 200, 225), (120, 150, 90), (200, 190, 160), (90, 110, 80), (215, 220, 225),
               (150, 130, 100))  # fmt: skip
MIN_ATTRIBUTE_DIFFERENCE = 2  # any two species differ in at least this many attributes


@dataclass(frozen=True)
class Species:
    """One synthetic species: its six attributes."""

    beak_shape: str
    beak_colour: str
    crown: str
    breast: str
    wing_bars: int
    tail: str

    @property
    def name(self) -> str:
        """A readable class-folder name without the number, e.g.
        `Black_long_bill_red_crown_white_breast_2_wing_bars_forked_tail`."""
        return (
            f"{self.beak_colour.capitalize()}_{self.beak_shape}_bill_{self.crown}_crown_"
            f"{self.breast}_breast_{self.wing_bars}_wing_bars_{self.tail}_tail"
        )


def species_list(task: str, count: int) -> list[Species]:
    """The first `count` species of `task` ("birds" or "source"): fixed, whatever the count.

    Species are drawn from a fixed shuffle of every attribute combination, each kept only when
    it differs from all species kept before in at least MIN_ATTRIBUTE_DIFFERENCE attributes; the
    lab's species take even positions of that sequence and the source task's odd ones, so the
    two never share a species. Raises ValueError when more species are asked than exist.
    """
    if task not in ("birds", "source"):
        raise ValueError(f"task must be 'birds' or 'source', got {task!r}")
    combos = list(itertools.product(BEAK_SHAPES, BEAK_COLOURS, CROWNS, BREASTS, WING_BARS, TAILS))
    order = np.random.default_rng(2011).permutation(len(combos))
    kept: list[tuple] = []
    for i in order:
        combo = combos[i]
        if all(
            sum(a != b for a, b in zip(combo, k, strict=True)) >= MIN_ATTRIBUTE_DIFFERENCE
            for k in kept
        ):
            kept.append(combo)
    chosen = kept[0 if task == "birds" else 1 :: 2]
    if count > len(chosen):
        raise ValueError(f"at most {len(chosen)} synthetic species for {task!r}, asked {count}")
    return [Species(*combo) for combo in chosen[:count]]


# ---------------------------------------------------------------------------------------------
# drawing: a bird in its own frame (facing +x, y down, body half-length 1), then posed


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _beak(shape: str) -> np.ndarray:
    base_top, base_bottom = (1.28, -0.68), (1.28, -0.5)
    tips = {
        "short": [(1.62, -0.58)],
        "long": [(2.1, -0.57)],
        "hooked": [(1.62, -0.66), (1.74, -0.5), (1.66, -0.38), (1.58, -0.5)],
        "thick": [(1.58, -0.57)],
    }
    if shape == "thick":
        base_top, base_bottom = (1.22, -0.8), (1.22, -0.36)
    return np.array([base_top, *tips[shape], base_bottom])


def _tail(shape: str) -> np.ndarray:
    points = {
        "forked": [(-0.8, -0.2), (-1.65, -0.45), (-1.3, -0.1), (-1.65, 0.2), (-0.8, 0.05)],
        "rounded": [(-0.8, -0.22), (-1.3, -0.3), (-1.48, -0.08), (-1.3, 0.15), (-0.8, 0.06)],
        "pointed": [(-0.8, -0.2), (-1.85, -0.08), (-0.8, 0.06)],
    }
    return np.array(points[shape])


# part locations in the bird's frame; "near"/"far" become right/left by the facing direction
_PART_FRAME = {
    "back": (-0.25, -0.5), "beak": (1.5, -0.58), "belly": (0.0, 0.45), "breast": (0.55, 0.2),
    "crown": (0.92, -0.95), "forehead": (1.2, -0.8), "near eye": (1.1, -0.64),
    "far eye": (1.1, -0.64), "near leg": (0.2, 0.95), "far leg": (-0.05, 0.95),
    "near wing": (-0.1, -0.08), "far wing": (0.0, -0.2), "nape": (0.62, -0.78),
    "tail": (-1.4, -0.08), "throat": (1.0, -0.28),
}  # fmt: skip


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 18) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
    """Branches, leaves and blobs, some in the attribute colours, all over the canvas."""
    attribute_colours = [c for c in (*BEAK_COLOURS.values(), *CROWNS.values()) if c] + [
        (250, 250, 250)
    ]
    for _ in range(int(rng.integers(3, 7))):  # branches
        x0, y0 = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 0.9) * size
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        colour = _jitter(rng, ((95, 70, 45), (70, 90, 50), (120, 110, 100))[rng.integers(3)])
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.uniform(0.01, 0.03) * size))
    for _ in range(int(rng.integers(6, 14))):  # leaves and blobs
        cx, cy = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(0.015, 0.06, 2) * size
        if rng.random() < 0.45:
            colour = attribute_colours[rng.integers(len(attribute_colours))]
        else:
            colour = ((60, 120, 50), (90, 140, 60), (40, 90, 40), (150, 150, 70))[rng.integers(4)]
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_jitter(rng, colour))


def draw_bird(
    species: Species, rng: np.random.Generator, size: int
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One image of `species`: (RGB image size x size, box (4,) x, y, w, h, parts (15, 3)).

    Parts follow CUB_PARTS' order, as x, y in pixels and visibility (1 or 0). Deterministic
    given `rng`'s state.
    """
    big = size * SUPERSAMPLE
    background = _jitter(rng, BACKGROUNDS[rng.integers(len(BACKGROUNDS))], 25)
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    _clutter(draw, rng, big)

    facing_right = bool(rng.random() < 0.5)
    scale = rng.uniform(0.19, 0.26) * big
    tilt = np.deg2rad(rng.uniform(-15, 15))
    margin = np.minimum(big / 2, np.array([1.8, 1.2]) * scale)  # most of the bird in view
    centre = rng.uniform(margin, big - margin)
    cos, sin = math.cos(tilt), math.sin(tilt)
    mirror = 1.0 if facing_right else -1.0

    def pose(points) -> list[tuple[float, float]]:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2) * scale
        p[:, 0] *= mirror
        x = p[:, 0] * cos - p[:, 1] * sin
        y = p[:, 0] * sin + p[:, 1] * cos
        return list(zip(x + centre[0], y + centre[1], strict=True))

    body = _jitter(rng, BODY_COLOURS[rng.integers(len(BODY_COLOURS))])
    head = _shade(body, rng.uniform(0.8, 1.2))
    wing = _shade(body, rng.uniform(0.55, 0.8))
    beak_colour = BEAK_COLOURS[species.beak_colour]
    drawn: list[list[tuple[float, float]]] = []

    def polygon(points, fill) -> None:
        posed = pose(points)
        drawn.append(posed)
        draw.polygon(posed, fill=fill)

    leg = _shade(beak_colour, 0.6) if species.beak_colour != "black" else (60, 50, 40)
    for x in (0.2, -0.05):  # legs
        posed = pose([(x, 0.45), (x + 0.05, 1.0)])
        drawn.append(posed)
        draw.line(posed, fill=leg, width=max(1, int(0.06 * scale)))
    polygon(_tail(species.tail), _shade(body, 0.7))
    polygon(_ellipse(0.0, 0.0, 1.0, 0.58), body)
    polygon(_ellipse(0.55, 0.2, 0.4, 0.3), BREASTS[species.breast] or _shade(body, 1.25))
    polygon(_ellipse(-0.1, -0.08, 0.68, 0.34), wing)
    for k in range(species.wing_bars):  # pale bars across the wing
        x = -0.05 - 0.3 * k
        polygon([(x, -0.38), (x + 0.14, -0.38), (x + 0.06, 0.24), (x - 0.08, 0.24)],
                (235, 235, 225))  # fmt: skip
    polygon(_ellipse(0.95, -0.58, 0.42, 0.4), head)
    crown = CROWNS[species.crown]
    if crown is not None:
        polygon(_ellipse(0.9, -0.9, 0.36, 0.17), crown)
    polygon(_beak(species.beak_shape), beak_colour)
    polygon(_ellipse(1.1, -0.64, 0.085, 0.085, 12), (10, 10, 10))

    image = image.reduce(SUPERSAMPLE)
    points = np.concatenate([np.asarray(p) for p in drawn]) / SUPERSAMPLE
    x0, y0 = np.clip(points.min(axis=0), 0, size)
    x1, y1 = np.clip(points.max(axis=0), 0, size)
    near, far = ("right", "left") if facing_right else ("left", "right")
    parts = np.zeros((len(CUB_PARTS), 3), dtype=np.float32)
    for name, xy in _PART_FRAME.items():
        side, _, rest = name.partition(" ")
        cub_name = f"{near if side == 'near' else far} {rest}" if rest else name
        visible = not name.startswith("far ") or name == "far leg"
        px, py = np.asarray(pose([xy])[0]) / SUPERSAMPLE
        inside = 0 <= px < size and 0 <= py < size
        parts[CUB_PARTS.index(cub_name)] = (px, py, 1.0) if visible and inside else (0, 0, 0)
    return image, np.array([x0, y0, x1 - x0, y1 - y0], dtype=np.float32), parts


# ---------------------------------------------------------------------------------------------
# writing the CUB layout


@dataclass(frozen=True)
class SynthBirdsSpec:
    """What a synthetic set holds: `num_classes` species of `task`, `train_per_class` +
    `test_per_class` images each, `image_size` px square, drawn from `seed`."""

    num_classes: int
    train_per_class: int
    test_per_class: int
    image_size: int
    task: str = "birds"
    seed: int = 0

    @property
    def version(self) -> str:
        """The marker text of a finished write of exactly this set."""
        return (
            f"labkit synthetic birds v{GENERATOR_VERSION}: {self.task}, {self.num_classes} "
            f"classes, {self.train_per_class}+{self.test_per_class}/class, "
            f"{self.image_size}px, seed {self.seed}"
        )

    @property
    def folder_name(self) -> str:
        """A folder name that differs for every different set."""
        return (
            f"synthbirds-{self.task}-{self.num_classes}c-{self.train_per_class}"
            f"+{self.test_per_class}-{self.image_size}px-s{self.seed}-v{GENERATOR_VERSION}"
        )


def write_synthetic_birds(root: Path, spec: SynthBirdsSpec) -> Path:
    """Write `spec`'s birds in the CUB-200-2011 layout under `root`, once; return `root`.

    A folder already holding this exact set (its marker) is left untouched; the set is drawn
    into a hidden sibling first and renamed into place, so an interrupted write never looks
    finished. Images of a class are numbered; the first `train_per_class` are the training
    split. Deterministic: the same spec gives the same bytes.

    Raises FileExistsError when `root` holds something else that labkit did not write.
    """
    return write_once(Path(root), spec.version, lambda folder: _write_layout(folder, spec))


def synthetic_birds_folder(base: Path, spec: SynthBirdsSpec) -> Path:
    """Where `spec`'s synthetic birds are written under the data folder `base`:
    `<base>/builtin/<spec.folder_name>` (as `labkit.data.write_builtin_data` writes them for the
    grader)."""
    return Path(base) / "builtin" / spec.folder_name


def _write_layout(root: Path, spec: SynthBirdsSpec) -> None:
    species = species_list(spec.task, spec.num_classes)
    names = [f"{c + 1:03d}.{s.name}" for c, s in enumerate(species)]
    lines = {key: [] for key in ("images", "labels", "split", "boxes", "part_locs")}
    image_id = 0
    per_class = spec.train_per_class + spec.test_per_class
    task_seed = 0 if spec.task == "birds" else 1
    for c, (kind, name) in enumerate(zip(species, names, strict=True)):
        folder = root / "images" / name
        folder.mkdir(parents=True)
        for k in range(per_class):
            image_id += 1
            rng = np.random.default_rng([spec.seed, task_seed, c, k])
            image, box, parts = draw_bird(kind, rng, spec.image_size)
            file = f"{name}/{name.split('.', 1)[1]}_{k + 1:04d}.jpg"
            image.save(root / "images" / file, format="JPEG", quality=92)
            lines["images"].append(f"{image_id} {file}")
            lines["labels"].append(f"{image_id} {c + 1}")
            lines["split"].append(f"{image_id} {1 if k < spec.train_per_class else 0}")
            lines["boxes"].append(f"{image_id} " + " ".join(f"{v:.1f}" for v in box))
            for p, (x, y, v) in enumerate(parts, start=1):
                lines["part_locs"].append(f"{image_id} {p} {x:.1f} {y:.1f} {int(v)}")
    (root / "parts").mkdir()
    files = {
        "images.txt": lines["images"],
        "image_class_labels.txt": lines["labels"],
        "train_test_split.txt": lines["split"],
        "bounding_boxes.txt": lines["boxes"],
        "classes.txt": [f"{c + 1} {n}" for c, n in enumerate(names)],
        "parts/parts.txt": [f"{p + 1} {n}" for p, n in enumerate(CUB_PARTS)],
        "parts/part_locs.txt": lines["part_locs"],
    }
    for name, rows in files.items():
        (root / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
