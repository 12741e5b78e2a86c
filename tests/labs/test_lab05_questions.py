"""Lab 05's graded questions, each checked in-process as the grader does (`run_checks`).

For every question: (a) the model answer gets full marks, (b) a correct answer in another form
(NumPy, float64, loops) gets full marks, (c) a plausible wrong answer gets no marks and a
message a student can act on. The answer cell and the probe cell after it run from the
solutions notebook itself, so the tests follow the lab.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from questions import Lab, run_cells
from scipy import ndimage

LAB = Lab(Path(__file__).resolve().parents[2] / "solutions" / "05_opam.ipynb")
_grade, _model, _probe, _full = LAB.grade, LAB.answer, LAB.probe, LAB.full
CODE_QUESTIONS = ("q1_iou", "q2_object_box", "q3_part_score")
# three activation maps standing in for the test images' (the probe of q2 boxes them too)
CAMS = torch.rand(3, 7, 7, generator=torch.Generator().manual_seed(0)) ** 2


def _run(*sources: str) -> dict:
    namespace = {"torch": torch, "pd": pd, "np": np, "ndimage": ndimage,
                 "test_attention": SimpleNamespace(cams=CAMS)}  # fmt: skip
    return run_cells(namespace, *sources)


def test_every_code_question_is_tested_here() -> None:
    assert set(LAB.questions) == set(CODE_QUESTIONS)
    assert [_full(q) for q in CODE_QUESTIONS] == [2.0, 3.0, 3.0]


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_model_answers_get_full_marks(grade_id: str) -> None:
    ns = _run(_model(grade_id), _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_released_answer_cells_ask_for_the_answer(grade_id: str) -> None:
    released = LAB.released(grade_id)
    assert "### BEGIN SOLUTION" not in released and "raise NotImplementedError()" in released
    with pytest.raises(NotImplementedError):
        _run(released, _probe(grade_id))


OTHER_FORMS = {
    "q1_iou": """
def iou(boxes_a, boxes_b):  # NumPy, float64, returned as an array
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
    "q2_object_box": """
def object_box_from(saliency, threshold):  # a flood fill of its own, a list returned
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
    "q3_part_score": """
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
}


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_answers_in_other_forms_get_full_marks(grade_id: str) -> None:
    ns = _run(OTHER_FORMS[grade_id], _probe(grade_id))
    assert _grade(grade_id, ns) == (_full(grade_id), "")


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
        "your IoU differs from torchvision.ops.box_iou",
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
        "def object_box_from(saliency, threshold):\n"
        "    regions, count = ndimage.label(np.asarray(saliency) >= threshold, np.ones((3, 3)))\n"
        "    if count == 0:\n"
        "        return torch.tensor([0.0, 0, saliency.shape[1], saliency.shape[0]])\n"
        "    boxes = []\n"
        "    for r in range(1, count + 1):\n"
        "        rows, cols = np.nonzero(regions == r)\n"
        "        boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])\n"
        "    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])\n"
        "    return torch.tensor(max(boxes, key=area))",
        "the largest region is the one with the most pixels",
    ),
    (  # the first region, not the largest
        "q2_object_box",
        "def object_box_from(saliency, threshold):\n"
        "    regions, count = ndimage.label(np.asarray(saliency) >= threshold, np.ones((3, 3)))\n"
        "    if count == 0:\n"
        "        return torch.tensor([0.0, 0, saliency.shape[1], saliency.shape[0]])\n"
        "    rows, cols = np.nonzero(regions == 1)\n"
        "    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])",
        "you boxed the first region found, not the largest",
    ),
    (  # every kept pixel's box
        "q2_object_box",
        "def object_box_from(saliency, threshold):\n"
        "    rows, cols = np.nonzero(np.asarray(saliency) >= threshold)\n"
        "    if len(rows) == 0:\n"
        "        return torch.tensor([0.0, 0, saliency.shape[1], saliency.shape[0]])\n"
        "    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])",
        "your box holds every kept pixel",
    ),
    (  # 4-connectivity
        "q2_object_box",
        "_right = object_box_from\n"
        "def object_box_from(saliency, threshold):\n"
        "    regions, count = ndimage.label(np.asarray(saliency) >= threshold)\n"
        "    if count == 0:\n"
        "        return torch.tensor([0.0, 0, saliency.shape[1], saliency.shape[0]])\n"
        "    largest = 1 + np.bincount(regions.ravel())[1:].argmax()\n"
        "    rows, cols = np.nonzero(regions == largest)\n"
        "    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])",
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


@pytest.mark.parametrize(("grade_id", "change", "message"), WRONG)
def test_plausible_wrong_answers_get_no_marks_and_say_why(
    grade_id: str, change: str, message: str
) -> None:
    points, got = _grade(grade_id, _run(_model(grade_id), change, _probe(grade_id)))
    assert points == 0.0 and message in got, got


@pytest.mark.parametrize("grade_id", CODE_QUESTIONS)
def test_an_unanswered_question_names_what_is_missing(grade_id: str) -> None:
    ns = _run(LAB.released(grade_id))
    with pytest.raises(NotImplementedError):
        exec(compile(_probe(grade_id), "<probe>", "exec"), ns)  # noqa: S102
    points, got = _grade(grade_id, ns)
    assert points == 0.0 and got.endswith("not defined where the notebook reaches the checks"), got


def test_a_changed_probe_is_named() -> None:
    ns = _run(_model("q2_object_box"), _probe("q2_object_box"))
    ns["box_probe"] = ns["box_probe"][:5]
    points, got = _grade("q2_object_box", ns)
    assert points == 0.0 and "run the cell after your answer unchanged" in got
