"""Lab 05's graded questions, each checked in-process as the grader does (`run_checks` and the
verdict on the calls the student's code made).

The tests every lab shares (`questions.QuestionSuite`) run on this lab's cases: correct answers in
other forms (NumPy, float64, loops, a vectorised search, integers only); shortcuts (torchvision's,
scipy's or OpenCV's version of the idea, labkit's own functions and private helpers, through an
alias or a helper in another cell); answers copied from the visible checks' literals; plausible
wrong answers. The answer cell and the probe cell after it run from the solutions notebook
itself, so the tests follow the lab.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from questions import Lab, QuestionSuite, run_cells

ROOT = Path(__file__).resolve().parents[2]
CODE_QUESTIONS = ("q1_iou", "q2_object_box", "q3_part_score")
# three activation maps standing in for the test images' (the probe of q2 boxes them too)
CAMS = torch.rand(3, 7, 7, generator=torch.Generator().manual_seed(0)) ** 2


def _namespace() -> dict:
    return {"__name__": "__main__", "torch": torch, "pd": pd, "np": np,
            "test_attention": SimpleNamespace(cams=CAMS)}  # fmt: skip


LAB = Lab(ROOT / "solutions" / "05_opam.ipynb", _namespace)
_model = LAB.answer


def test_each_question_forbids_the_library_versions_of_its_idea() -> None:
    # q3_part_score forbids labkit only, as every question (`TestQuestions.forbids_nothing`)
    forbidden = {q: set(LAB.questions[q].forbidden) for q in CODE_QUESTIONS}
    assert {"torchvision.ops.box_iou", "torchvision.ops.boxes"} <= forbidden["q1_iou"]
    assert {"scipy.ndimage", "skimage", "cv2"} <= forbidden["q2_object_box"]
    assert all(not LAB.questions[q].allowed for q in CODE_QUESTIONS)


# where an answer could be imported from: the released notebook names none of them
NEVER_NAMED = ("ndimage", "box_iou", "connectedComponents", "labkit.attention.saliency",
               "localisation_iou", "object_box(", "object_boxes(", "import part_score")  # fmt: skip


def test_the_released_notebook_does_not_point_at_an_importable_answer() -> None:
    released = nbformat.read(ROOT / "notebooks" / "05_opam.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in released.cells)
    for name in NEVER_NAMED:
        assert name not in text, name


# a part score that slices the map with the boxes' coordinates: Python ints only, as Question 3
# promises (float coordinates make the slices fail)
INTS_ONLY_PART_SCORE = """
def part_score(parts, object_box, saliency):
    height, width = saliency.shape
    covered = torch.zeros(len(parts), height, width, dtype=torch.bool)
    for k, (x1, y1, x2, y2) in enumerate(parts.tolist()):
        covered[k, y1:y2, x1:x2] = True
    x1, y1, x2, y2 = object_box.tolist()
    inside = torch.zeros(height, width, dtype=torch.bool)
    inside[y1:y2, x1:x2] = True
    union, inter = covered.any(dim=0), covered.all(dim=0)
    room = int(union.sum()) - int(inter.sum()) - int((union & ~inside).sum())
    if room <= 0:
        return float("-inf")
    return float(np.log(room) + np.log(float(saliency[union].double().mean())))
"""

OTHER_FORMS = [
    (
        "q1_iou",
        """
def iou(boxes_a, boxes_b):  # NumPy, float64, a loop over the pairs, an array returned
    a, b = np.asarray(boxes_a, dtype=np.float64), np.asarray(boxes_b, dtype=np.float64)
    out = np.zeros((len(a), len(b)))
    for i, (ax1, ay1, ax2, ay2) in enumerate(a):
        for j, (bx1, by1, bx2, by2) in enumerate(b):
            w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            h = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = w * h
            out[i, j] = inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
    return out
""",
    ),
    (
        "q1_iou",
        """
def iou(boxes_a, boxes_b):  # corners as pairs, float32 kept
    lo = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    hi = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = (hi - lo).clamp_min(0).prod(dim=-1)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)[:, None]
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(dim=-1)[None, :]
    return (inter / (area_a + area_b - inter)).float()
""",
    ),
    (
        "q2_object_box",
        """
def object_box_from(saliency, threshold):  # a depth-first flood fill of its own, a list returned
    grid = np.asarray(saliency)
    kept = grid >= threshold
    seen = np.zeros_like(kept)
    best = []
    for r, c in zip(*np.nonzero(kept)):
        if seen[r, c]:
            continue
        stack, region = [(r, c)], []
        seen[r, c] = True
        while stack:
            y, x = stack.pop()
            region.append((y, x))
            for ny in range(max(0, y - 1), min(grid.shape[0], y + 2)):
                for nx in range(max(0, x - 1), min(grid.shape[1], x + 2)):
                    if kept[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        if len(region) > len(best):
            best = region
    if not best:
        return [0, 0, grid.shape[1], grid.shape[0]]
    ys, xs = zip(*best)
    return [min(xs), min(ys), max(xs) + 1, max(ys) + 1]
""",
    ),
    (
        "q2_object_box",
        """
def object_box_from(saliency, threshold):  # labels spread by max-pooling until they settle
    kept = torch.as_tensor(saliency) >= threshold
    height, width = kept.shape
    if not kept.any():
        return torch.tensor([0.0, 0.0, width, height], dtype=torch.float64)
    numbers = torch.arange(1, height * width + 1, dtype=torch.float64).reshape(height, width)
    labels = torch.where(kept, numbers, 0.0)
    while True:
        grown = torch.nn.functional.max_pool2d(labels[None, None], 3, stride=1, padding=1)[0, 0]
        grown = torch.where(kept, grown, 0.0)
        if torch.equal(grown, labels):
            break
        labels = grown
    counts = torch.bincount(labels.flatten().long())
    counts[0] = 0
    rows, cols = torch.nonzero(labels == counts.argmax(), as_tuple=True)
    return torch.stack([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).double()
""",
    ),
    (
        "q3_part_score",
        """
def part_score(parts, object_box, saliency):  # NumPy masks, numpy float returned
    sal = np.asarray(saliency, dtype=np.float64)
    ys, xs = np.mgrid[: sal.shape[0], : sal.shape[1]]
    def mask(b):
        return (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])
    masks = [mask(np.asarray(p)) for p in parts]
    union = np.logical_or.reduce(masks)
    inter = np.logical_and.reduce(masks)
    outside = union & ~mask(np.asarray(object_box))
    room = union.sum() - inter.sum() - outside.sum()
    return np.float64(-np.inf) if room <= 0 else np.log(room) + np.log(sal[union].mean())
""",
    ),
    ("q3_part_score", INTS_ONLY_PART_SCORE),
]


def _later_cell(cell_id: str) -> str:
    return next(c.source for c in LAB.nb.cells if c.get("id") == cell_id)


def test_the_cell_after_question_3_runs_an_answer_that_takes_integers_only() -> None:
    """Question 3 promises integer boxes: the cell comparing the answer with labkit's choice of
    parts must hand it integers, or a right answer that slices the map crashes there."""
    candidates = torch.tensor([[4.0, 3, 12, 10], [12, 10, 20, 17], [6, 4, 15, 12], [0, 0, 9, 9]])
    saliency = torch.rand(4, 20, 24, generator=torch.Generator().manual_seed(1))
    ns = LAB.run(INTS_ONLY_PART_SCORE)
    with pytest.raises(TypeError):  # what a float box does to this answer
        ns["part_score"](candidates[:2], torch.tensor([4.0, 3, 20, 17]), saliency[0])
    ns.update(
        lab05=SimpleNamespace(candidate_parts=lambda attention, k, settings: candidates),
        test_attention=SimpleNamespace(object_boxes=torch.tensor([[4.0, 3, 20, 17]] * 4)),
        test_maps=saliency,
        settings=SimpleNamespace(num_parts=2),
    )
    run_cells(ns, _later_cell("5849e1db"))
    # the cell ran: its rows hold the student's score of labkit's pair beside labkit's own
    rows = pd.DataFrame(ns["rows"])
    assert len(rows) == 4
    np.testing.assert_allclose(
        rows["your part_score of that pair"], rows["best pair's score (labkit)"], rtol=1e-6
    )


SHORTCUTS = [
    ("q1_iou", ("from torchvision.ops import box_iou as iou",), "box_iou"),
    (  # a helper in another cell
        "q1_iou",
        (
            "from torchvision.ops import box_iou\ndef overlap(a, b):\n    return box_iou(a, b)",
            "def iou(boxes_a, boxes_b):\n    return overlap(boxes_a, boxes_b)",
        ),
        "box_iou",
    ),
    (  # torchvision's private helper
        "q1_iou",
        (
            "import torchvision\n"
            "def iou(boxes_a, boxes_b):\n"
            "    inter, union = torchvision.ops.boxes._box_inter_union(boxes_a, boxes_b)\n"
            "    return inter / union",
        ),
        "_box_inter_union",
    ),
    (  # labkit's version, pair by pair
        "q1_iou",
        (
            "from labkit.attention.saliency import localisation_iou\n"
            "def iou(boxes_a, boxes_b):\n"
            "    n, m = len(boxes_a), len(boxes_b)\n"
            "    pairs = localisation_iou(boxes_a.repeat_interleave(m, 0), boxes_b.repeat(n, 1))\n"
            "    return pairs.reshape(n, m)",
        ),
        "localisation_iou",
    ),
    (  # scipy's labelling
        "q2_object_box",
        (
            "from scipy import ndimage\n"
            "def object_box_from(saliency, threshold):\n"
            "    kept = np.asarray(saliency) >= threshold\n"
            "    regions, count = ndimage.label(kept, structure=np.ones((3, 3)))\n"
            "    if count == 0:\n"
            "        return torch.tensor([0.0, 0.0, kept.shape[1], kept.shape[0]])\n"
            "    largest = 1 + np.bincount(regions.ravel())[1:].argmax()\n"
            "    rows, cols = np.nonzero(regions == largest)\n"
            "    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])",
        ),
        "label",
    ),
    (  # OpenCV's labelling
        "q2_object_box",
        (
            "import cv2\n"
            "def object_box_from(saliency, threshold):\n"
            "    kept = (np.asarray(saliency) >= threshold).astype(np.uint8)\n"
            "    count, regions = cv2.connectedComponents(kept, connectivity=8)\n"
            "    if count == 1:\n"
            "        return [0, 0, kept.shape[1], kept.shape[0]]\n"
            "    largest = 1 + np.bincount(regions.ravel())[1:].argmax()\n"
            "    rows, cols = np.nonzero(regions == largest)\n"
            "    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]",
        ),
        "connectedComponents",
    ),
    (  # labkit's version through an alias
        "q2_object_box",
        ("from labkit.attention.saliency import object_box as object_box_from",),
        "object_box",
    ),
    (  # labkit's batched version through a helper in another cell
        "q2_object_box",
        (
            "import labkit.attention.saliency as sal\n"
            "def boxes_of(grid, threshold):\n"
            "    return sal.object_boxes(grid[None], threshold)[0]",
            "def object_box_from(saliency, threshold):\n"
            "    return boxes_of(torch.as_tensor(saliency).float(), threshold)",
        ),
        "object_boxes",
    ),
    ("q3_part_score", ("from labkit.attention.part_selection import part_score",), "part_score"),
    (  # labkit's private helper for the formula, the terms computed by the student
        "q3_part_score",
        (
            "from labkit.attention.part_selection import _delta_part\n"
            "def part_score(parts, object_box, saliency):\n"
            "    h, w = saliency.shape\n"
            "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
            "    mask = lambda b: (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])\n"
            "    union, inter = mask(parts[0]) | mask(parts[1]), mask(parts[0]) & mask(parts[1])\n"
            "    spread = union.sum() - inter.sum() - (union & ~mask(object_box)).sum()\n"
            "    total = saliency[union].double().sum()\n"
            "    return float(_delta_part(spread.double(), total, union.sum().double()))",
        ),
        "_delta_part",
    ),
    (  # labkit's version through a helper in another cell
        "q3_part_score",
        (
            "from labkit.attention import part_selection as P\n"
            "def scored(parts, box, saliency):\n"
            "    return P.part_score(parts, box, saliency)",
            "def part_score(parts, object_box, saliency):\n"
            "    return scored(parts, object_box, saliency)",
        ),
        "part_score",
    ),
    (  # labkit's masks, the rest written out
        "q3_part_score",
        (
            "from labkit.attention.part_selection import box_masks\n"
            "def part_score(parts, object_box, saliency):\n"
            "    h, w = saliency.shape\n"
            "    masks = box_masks(parts.float(), h, w)\n"
            "    union, inter = masks.any(dim=0), masks.all(dim=0)\n"
            "    inside = box_masks(object_box.float()[None], h, w)[0]\n"
            "    room = union.sum() - inter.sum() - (union & ~inside).sum()\n"
            "    if room <= 0:\n"
            "        return float('-inf')\n"
            "    mean = saliency[union].double().mean()\n"
            "    return float(torch.log(room.double()) + torch.log(mean))",
        ),
        "box_masks",
    ),
]


# answers made of the visible checks' literal values: they pass what a student sees and fail
# what the grader keeps hidden
PASTED = [
    (
        "q1_iou",
        "def iou(boxes_a, boxes_b):\n"
        "    return torch.tensor([[1.0, 0.0, 0.1875], [1 / 7, 1 / 7, 1 / 37], [0.375, 0.0, 0.2],\n"
        "                         [0.0, 0.0, 0.0]], dtype=torch.float64)",
    ),
    (
        "q2_object_box",
        "def object_box_from(saliency, threshold):\n"
        "    seen = {(12, 16): [8.0, 5.0, 15.0, 10.0], (8, 8): [0.0, 0.0, 6.0, 6.0],\n"
        "            (10, 10): [6.0, 6.0, 8.0, 9.0]}\n"
        "    height, width = saliency.shape\n"
        "    return seen.get((height, width), [0.0, 0.0, float(width), float(height)])",
    ),
    (
        "q3_part_score",
        "_sets = [[4, 3, 12, 10, 12, 10, 20, 17], [4, 3, 14, 12, 8, 6, 18, 15],\n"
        "         [0, 0, 10, 8, 14, 12, 24, 20]]\n"
        "def part_score(parts, object_box, saliency):\n"
        "    key = [int(v) for v in parts.flatten()]\n"
        "    scores = [4.123838, 4.131837, 3.480883]\n"
        "    return scores[_sets.index(key)] if key in _sets else float('-inf')",
    ),
]


# a flood fill for the wrong answers of Question 2: the regions of a kept mask, in the order
# their first pixel comes row by row; `diagonal=False` connects 4 neighbours only
FLOOD = """
def _regions(kept, diagonal=True):
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if diagonal or dy * dx == 0]
    todo, out = set(map(tuple, np.argwhere(kept).tolist())), []
    for start in sorted(todo):
        if start not in todo:
            continue
        todo.remove(start)
        region = [start]
        for y, x in region:
            for dy, dx in steps:
                if (y + dy, x + dx) in todo:
                    todo.remove((y + dy, x + dx))
                    region.append((y + dy, x + dx))
        out.append(region)
    return out

def _box(region):
    ys, xs = zip(*region)
    return torch.tensor([min(xs), min(ys), max(xs) + 1, max(ys) + 1], dtype=torch.float32)
"""
_WHOLE = "        return torch.tensor([0.0, 0, saliency.shape[1], saliency.shape[0]])\n"

WRONG = [
    (  # negative widths not clamped: two negatives make a positive area
        "q1_iou",
        "def iou(a, b):\n"
        "    a, b = a[:, None], b[None]\n"
        "    w = torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])\n"
        "    h = torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])\n"
        "    inter = w * h\n"
        "    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])\n"
        "    return inter / (area(a) + area(b) - inter)",
        "clamp the intersection's width and height at 0",
    ),
    (  # intersection over the sum of the areas
        "q1_iou",
        "_right = iou\ndef iou(a, b):\n    value = _right(a, b)\n    return value / (1 + value)",
        "divide the intersection by the union",
    ),
    (  # intersection over the first box's area
        "q1_iou",
        "def iou(a, b):\n"
        "    a, b = a[:, None], b[None]\n"
        "    lo = torch.maximum(a[..., :2], b[..., :2])\n"
        "    hi = torch.minimum(a[..., 2:], b[..., 2:])\n"
        "    inter = (hi - lo).clamp(min=0).prod(dim=-1)\n"
        "    return inter / (a[..., 2:] - a[..., :2]).prod(dim=-1)",
        "a1 against b0: yours 0.2500, expected 0.1429",
    ),
    (  # the pixel-inclusive convention: width x2 - x1 + 1
        "q1_iou",
        "def iou(a, b):\n"
        "    a, b = a[:, None], b[None]\n"
        "    lo = torch.maximum(a[..., :2], b[..., :2])\n"
        "    hi = torch.minimum(a[..., 2:], b[..., 2:])\n"
        "    inter = (hi - lo + 1).clamp(min=0).prod(dim=-1)\n"
        "    area = lambda x: (x[..., 2:] - x[..., :2] + 1).prod(dim=-1)\n"
        "    return inter / (area(a) + area(b) - inter)",
        "with no + 1",
    ),
    (  # strictly above the threshold
        "q2_object_box",
        "_right = object_box_from\n"
        "def object_box_from(saliency, threshold):\n"
        "    return _right(saliency, threshold + 1e-6)",
        "pixels exactly at the threshold are kept",
    ),
    (  # the region with the largest box, not the most pixels
        "q2_object_box",
        FLOOD + "def object_box_from(saliency, threshold):\n"
        "    regions = _regions(np.asarray(saliency) >= threshold)\n"
        "    if not regions:\n" + _WHOLE + "    boxes = [_box(r) for r in regions]\n"
        "    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])\n"
        "    return max(boxes, key=area)",
        "the largest region is the one with the most pixels",
    ),
    (  # the first region, not the largest
        "q2_object_box",
        FLOOD + "def object_box_from(saliency, threshold):\n"
        "    regions = _regions(np.asarray(saliency) >= threshold)\n"
        "    if not regions:\n" + _WHOLE + "    return _box(regions[0])",
        "you boxed the first region found, not the largest",
    ),
    (  # every kept pixel's box
        "q2_object_box",
        "def object_box_from(saliency, threshold):\n"
        "    rows, cols = np.nonzero(np.asarray(saliency) >= threshold)\n"
        "    if len(rows) == 0:\n"
        + _WHOLE
        + "    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]",
        "your box holds every kept pixel",
    ),
    (  # 4-connectivity
        "q2_object_box",
        FLOOD + "def object_box_from(saliency, threshold):\n"
        "    regions = _regions(np.asarray(saliency) >= threshold, diagonal=False)\n"
        "    if not regions:\n" + _WHOLE + "    return _box(max(regions, key=len))",
        "pixels touching only at corners are connected too",
    ),
    (  # inclusive x2, y2
        "q2_object_box",
        "_right = object_box_from\n"
        "def object_box_from(saliency, threshold):\n"
        "    return torch.as_tensor(_right(saliency, threshold)) - torch.tensor([0, 0, 1, 1])",
        "x2 and y2 are just past the region",
    ),
    (  # the intersection not subtracted
        "q3_part_score",
        "def part_score(parts, object_box, saliency):\n"
        "    h, w = saliency.shape\n"
        "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
        "    mask = lambda b: (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])\n"
        "    union = mask(parts[0]) | mask(parts[1])\n"
        "    outside = union & ~mask(object_box)\n"
        "    room = union.sum() - outside.sum()\n"
        "    if room <= 0:\n"
        "        return float('-inf')\n"
        "    return float(torch.log(room.double()) + torch.log(saliency[union].double().mean()))",
        "subtract A_I, the pixels inside both parts",
    ),
    (  # the area outside the object not subtracted
        "q3_part_score",
        "def part_score(parts, object_box, saliency):\n"
        "    h, w = saliency.shape\n"
        "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
        "    mask = lambda b: (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])\n"
        "    union = mask(parts[0]) | mask(parts[1])\n"
        "    inter = mask(parts[0]) & mask(parts[1])\n"
        "    room = union.sum() - inter.sum()\n"
        "    if room <= 0:\n"
        "        return float('-inf')\n"
        "    return float(torch.log(room.double()) + torch.log(saliency[union].double().mean()))",
        "subtract A_O",
    ),
    (  # the mean over the parts' pixels one part after the other (overlap counted twice)
        "q3_part_score",
        "_right = part_score\n"
        "def part_score(parts, object_box, saliency):\n"
        "    value = _right(parts, object_box, saliency)\n"
        "    if value == float('-inf'):\n"
        "        return value\n"
        "    h, w = saliency.shape\n"
        "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
        "    mask = lambda b: (xs >= b[0]) & (xs < b[2]) & (ys >= b[1]) & (ys < b[3])\n"
        "    union = mask(parts[0]) | mask(parts[1])\n"
        "    both = torch.cat([saliency[mask(p)] for p in parts]).double().mean()\n"
        "    mean = saliency[union].double().mean()\n"
        "    return value - float(torch.log(mean)) + float(torch.log(both))",
        "each pixel once",
    ),
    (  # boxes that include their x2 column and y2 row
        "q3_part_score",
        "def part_score(parts, object_box, saliency):\n"
        "    h, w = saliency.shape\n"
        "    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')\n"
        "    mask = lambda b: (xs >= b[0]) & (xs <= b[2]) & (ys >= b[1]) & (ys <= b[3])\n"
        "    union = mask(parts[0]) | mask(parts[1])\n"
        "    inter = mask(parts[0]) & mask(parts[1])\n"
        "    room = union.sum() - inter.sum() - (union & ~mask(object_box)).sum()\n"
        "    if room <= 0:\n"
        "        return float('-inf')\n"
        "    return float(torch.log(room.double()) + torch.log(saliency[union].double().mean()))",
        "your boxes are a pixel too large",
    ),
    (  # nan instead of -inf when nothing is left
        "q3_part_score",
        "_right = part_score\n"
        "def part_score(parts, object_box, saliency):\n"
        "    value = _right(parts, object_box, saliency)\n"
        "    return float('nan') if value == float('-inf') else value",
        "the score is -inf",
    ),
]


class TestQuestions(QuestionSuite):
    lab = LAB
    points = {"q1_iou": 2.0, "q2_object_box": 3.0, "q3_part_score": 3.0}
    forbids_nothing = ("q3_part_score",)
    # no reference to paste: no function, no library, not the hidden checks' loop
    references = ("def ", "lambda", "torchvision", "box_iou", "ndimage", "collections", "range(20)")
    other_forms = [(grade_id, (answer,)) for grade_id, answer in OTHER_FORMS]
    shortcuts = SHORTCUTS
    wrong = WRONG
    visible_only = [(grade_id, (answer,)) for grade_id, answer in PASTED]


def test_a_changed_probe_is_named() -> None:
    ns = LAB.answered("q2_object_box", _model("q2_object_box"))
    ns["box_probe"] = ns["box_probe"][:5]
    points, got = LAB.grade("q2_object_box", ns)
    assert points == 0.0 and "run the cell after your answer unchanged" in got
