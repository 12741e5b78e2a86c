"""Samplers choose what goes into a batch: random or chosen-class triplets, P x K batches.

Every draw is vectorised over index arrays built once per label set (images grouped by class);
the only Python loops run over classes or batches, never over triplets or images.

Seeds: `seed=0` (an int) or a `numpy.random.Generator` gives a fixed stream. The samplers
default to `seed=None`: each epoch's draw takes its seed from torch's global generator, like
`DataLoader(shuffle=True)`, so `labkit.seed_everything` fixes the run and a resumed `fit`,
which restores the global generators at epoch boundaries, replays it exactly.

Used in: 03_facenet_knn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["PKSampler", "TripletSampler", "random_triplets"]

Labels = torch.Tensor | np.ndarray | Sequence[int]
Seed = int | np.random.Generator | None
ClassChoice = int | Sequence[int] | None
Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _generator(seed: Seed) -> np.random.Generator:
    """A numpy generator from a seed, a generator (used as is), or None (torch's global one)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:  # consumes torch's global generator: seed_everything and resume replay it
        seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    return np.random.default_rng(seed)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _ClassIndex:
    """Dataset indices grouped by class, built once: class `c`'s images are
    `members[starts[c] : starts[c] + counts[c]]`, with `c` a position in `classes`."""

    classes: np.ndarray  # (C,) sorted class labels
    counts: np.ndarray  # (C,) images per class
    starts: np.ndarray  # (C,) where each class begins in `members`
    members: np.ndarray  # (N,) dataset indices, grouped by class

    @classmethod
    def build(cls, labels: Labels) -> _ClassIndex:
        """Group `labels` (N,) by class; ValueError unless there are two classes and a pair."""
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a non-empty 1-D array of int class labels, got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        classes, counts = np.unique(labels, return_counts=True)
        if len(classes) < 2:
            raise ValueError(
                f"triplets need at least two classes (a negative comes from another class), "
                f"but every label is {classes[0]}; pass the labels of a multi-class dataset"
            )
        if counts.max() < 2:
            raise ValueError(
                f"no class has two images ({len(classes)} classes of one image each), so no "
                "anchor-positive pair exists; use at least two images of some class"
            )
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        members = np.argsort(labels, kind="stable")
        return cls(classes, counts, starts, members)

    def positions(self, name: str, choice: int | Sequence[int]) -> np.ndarray:
        """Positions in `classes` of the class label(s) `choice`; ValueError for unknown ones."""
        wanted = np.unique(np.atleast_1d(np.asarray(choice)))
        if wanted.size == 0:
            raise ValueError(f"{name} is empty; pass a class label or a non-empty list of them")
        where = np.searchsorted(self.classes, wanted).clip(max=len(self.classes) - 1)
        unknown = wanted[self.classes[where] != wanted]
        if unknown.size:
            known = ", ".join(str(c) for c in self.classes)
            raise ValueError(f"unknown {name} {unknown[0].item()!r}; the known classes are {known}")
        return where

    def images(self, positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Dataset index of image `offsets` (within its class) of each class in `positions`."""
        return self.members[self.starts[positions] + offsets]


@dataclass(frozen=True)
class _TripletPlan:
    """Which classes positives and negatives come from, checked once."""

    index: _ClassIndex
    positives: np.ndarray  # positions of the classes anchors and positives are drawn from
    negatives: np.ndarray  # positions of the classes negatives are drawn from (sorted)

    @classmethod
    def build(
        cls, labels: Labels, positive_class: ClassChoice, negative_class: ClassChoice
    ) -> _TripletPlan:
        """Check the choice of classes against `labels`; None means every usable class."""
        index = _ClassIndex.build(labels)
        if negative_class is None:
            negatives = np.arange(len(index.classes))
        else:
            negatives = index.positions("negative_class", negative_class)
        if positive_class is None:  # every class with a pair that has a negative besides itself
            positives = np.flatnonzero(index.counts >= 2)
            if len(negatives) == 1:
                positives = positives[positives != negatives[0]]
            if positives.size == 0:
                raise ValueError(
                    f"no class besides negative_class {index.classes[negatives[0]].item()} has "
                    "two images, so no anchor-positive pair exists; choose another negative_class"
                )
            return cls(index, positives, negatives)
        positives = index.positions("positive_class", positive_class)
        small = positives[index.counts[positives] < 2]
        if small.size:
            raise ValueError(
                f"positive_class {index.classes[small[0]].item()} has only one image; anchor "
                "and positive need two distinct images of it: choose another class"
            )
        if len(negatives) == 1 and negatives[0] in positives:
            raise ValueError(
                f"negative_class {index.classes[negatives[0]].item()} is also a positive_class; "
                "a negative must come from another class: choose two different classes"
            )
        return cls(index, positives, negatives)

    def draw(self, num_triplets: int, rng: np.random.Generator) -> Triplets:
        """`num_triplets` triplets (anchor, positive, negative) of dataset indices, vectorised."""
        counts = self.index.counts
        pos = self.positives[rng.integers(len(self.positives), size=num_triplets)]  # (T,)
        # negative class: uniform over `negatives` without the positive class (skip its slot)
        slot = np.searchsorted(self.negatives, pos)
        inside = (slot < len(self.negatives)) & (
            self.negatives[slot.clip(max=len(self.negatives) - 1)] == pos
        )
        r = rng.integers(len(self.negatives) - inside)
        neg = self.negatives[r + (inside & (r >= slot))]
        # anchor and positive: two distinct images of the class (j skips i)
        i = rng.integers(counts[pos])
        j = rng.integers(counts[pos] - 1)
        j += j >= i
        k = rng.integers(counts[neg])
        index = self.index
        return tuple(
            torch.from_numpy(index.images(c, o).astype(np.int64))
            for c, o in ((pos, i), (pos, j), (neg, k))
        )  # type: ignore[return-value]


def random_triplets(labels: Labels, num_triplets: int, *, seed: Seed = 0) -> Triplets:
    """The handout's random triplets as index tensors `(anchor_idx, positive_idx, negative_idx)`.

    The positive class is uniform over the classes with at least two images, anchor and
    positive are two distinct images of it, the negative class is uniform over the others.

    Args:
        labels: (N,) int class labels of the dataset.
        num_triplets: how many triplets to draw (T).
        seed: int or `numpy.random.Generator`; None draws the seed from torch's generator.

    Returns:
        Three int64 tensors (T,) of indices into the dataset.
    """
    num_triplets = _positive_int("num_triplets", num_triplets)
    return _TripletPlan.build(labels, None, None).draw(num_triplets, _generator(seed))


def _chosen_class_triplets(
    labels: Labels,
    num_triplets: int,
    positive_class: int | Sequence[int],
    negative_class: int | Sequence[int],
    *,
    seed: Seed = 0,
) -> Triplets:
    """Triplets with anchor and positive from `positive_class`, negative from `negative_class`.

    What `TripletSampler(positive_class=..., negative_class=...)` draws each epoch. Private: it
    is the handout's Question 3, which students write themselves in lab 03. Either may be one
    class label or several, drawn uniformly (a negative never shares the positive's class),
    e.g. `positive_class=3, negative_class=8`.

    Returns:
        Three int64 tensors (T,) of indices into the dataset, as `random_triplets`.
    """
    num_triplets = _positive_int("num_triplets", num_triplets)
    plan = _TripletPlan.build(labels, positive_class, negative_class)
    return plan.draw(num_triplets, _generator(seed))


class TripletSampler(Sampler[tuple[int, int, int]]):
    """Draws `triplets_per_epoch` fresh triplets at every epoch; yields `(a, p, n)` tuples.

    Pair it with `TripletDataset(dataset)`, which accepts such tuples as indices:
    `DataLoader(TripletDataset(train_set), batch_size=16, sampler=TripletSampler(labels, 8000))`.
    `positive_class` / `negative_class` restrict the classes as in `_chosen_class_triplets`.
    """

    def __init__(
        self,
        labels: Labels,
        triplets_per_epoch: int,
        *,
        positive_class: ClassChoice = None,
        negative_class: ClassChoice = None,
        seed: Seed = None,
    ) -> None:
        self.triplets_per_epoch = _positive_int("triplets_per_epoch", triplets_per_epoch)
        self._plan = _TripletPlan.build(labels, positive_class, negative_class)
        # an int seed: one stream across epochs; None: a new seed from torch per epoch
        self._rng = None if seed is None else _generator(seed)

    def __len__(self) -> int:
        """Triplets per epoch."""
        return self.triplets_per_epoch

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """This epoch's triplets, drawn when the epoch starts."""
        rng = self._rng if self._rng is not None else _generator(None)
        a, p, n = self._plan.draw(self.triplets_per_epoch, rng)
        return zip(a.tolist(), p.tolist(), n.tolist(), strict=True)


class PKSampler(Sampler[list[int]]):
    """Batches of P classes x K images each (a `batch_sampler`), for batch-hard / semi-hard mining.

    Each batch is a list of P * K dataset indices, K of each of P distinct classes, grouped
    class by class. Only classes with at least two images take part (a one-image class gives
    no positive). Images are distinct within a batch, except that with `replace=True` a class
    of c < K images repeats them: all c appear, each K // c or K // c + 1 times. Classes of K
    or more images never repeat one, with or without `replace`.

    Args:
        labels: (N,) int class labels of the dataset.
        p: classes per batch (>= 2). k: images per class (>= 2).
        batches_per_epoch: default: as many as cover the usable images once (at least 1).
        replace: allow classes smaller than K (their images repeat).
        seed: int or generator for a fixed stream; None: a new seed from torch per epoch.

    Raises:
        ValueError: for labels without two classes or without a class of two images, p or k
            below 2, k above the smallest usable class without `replace`, or p above the
            number of usable classes.
    """

    def __init__(
        self,
        labels: Labels,
        p: int,
        k: int,
        *,
        batches_per_epoch: int | None = None,
        replace: bool = False,
        seed: Seed = None,
    ) -> None:
        self.p, self.k = _positive_int("p", p, 2), _positive_int("k", k, 2)
        index = _ClassIndex.build(labels)
        usable = np.flatnonzero(index.counts >= 2)  # positions of classes with a pair
        if not replace and (index.counts[usable] < self.k).any():
            small = usable[np.argmin(index.counts[usable])]
            raise ValueError(
                f"k={self.k} is larger than class {index.classes[small].item()}, which has "
                f"{index.counts[small]} images; pass replace=True (its images then repeat) "
                f"or k <= {index.counts[small]}"
            )
        if self.p > len(usable):
            raise ValueError(
                f"p={self.p} is larger than the number of classes with at least two images "
                f"({len(usable)}); pass p <= {len(usable)}"
            )
        if batches_per_epoch is None:
            batches_per_epoch = max(1, int(index.counts[usable].sum()) // (self.p * self.k))
        self.batches_per_epoch = _positive_int("batches_per_epoch", batches_per_epoch)
        self.replace = replace
        self._rng = None if seed is None else _generator(seed)
        self._counts = index.counts[usable]  # (C,) of the usable classes
        # (C, max count) dataset indices, class by class, padded with -1; built once
        offsets = np.arange(self._counts.max())
        self._table = np.where(
            offsets < self._counts[:, None],
            index.members[
                (index.starts[usable][:, None] + offsets).clip(max=len(index.members) - 1)
            ],
            -1,
        )

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        """This epoch's batches of P * K dataset indices, grouped by class."""
        rng = self._rng if self._rng is not None else _generator(None)
        num_classes, width = self._table.shape
        for _ in range(self.batches_per_epoch):
            classes = rng.permutation(num_classes)[: self.p]  # (P,)
            counts = self._counts[classes][:, None]  # (P, 1)
            keys = np.where(np.arange(width) < counts, rng.random((self.p, width)), np.inf)
            order = np.argsort(keys, axis=1)  # (P, width) a permutation of each class's images
            # the first K of it; a class of count < K (replace=True) cycles through all of it
            slots = np.arange(self.k) % counts  # (P, K), each < its class's count
            offsets = np.take_along_axis(order, slots, axis=1)  # (P, K)
            yield self._table[classes[:, None], offsets].ravel().tolist()
