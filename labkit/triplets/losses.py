"""Losses take embeddings plus triplet indices: `loss_fn`s and a `metric_fn` for
`labkit.training.loop.fit`.

The loss itself is torch's `F.triplet_margin_loss`: mean of max(d(a, p) - d(a, n) + margin, 0).
The two training losses are modules, as torch's own losses are: their settings (the margin, the
miner's name) are plain fields, which a run's identity records (`labkit.training.runs`).

Used in: 03_facenet_knn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from labkit.triplets.miners import batch_hard, batch_semi_hard

__all__ = [
    "MINERS",
    "MinedTripletLoss",
    "StackedTripletLoss",
    "margin_violations",
    "mined_triplet_loss",
    "stacked_triplet_loss",
    "triplet_accuracy",
    "triplet_loss",
]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Miner = Callable[[torch.Tensor, torch.Tensor], Triplets]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MINERS = ("batch_hard", "semi_hard")  # the names `mined_triplet_loss` accepts


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"margin must be a number >= 0, got {margin!r}")
    if not math.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin!r}")
    return float(margin)


def triplet_loss(embeddings: torch.Tensor, indices: Triplets, margin: float) -> torch.Tensor:
    """Triplet margin loss of the triplets `indices` = (a, p, n) into `embeddings` (N, D).

    No triplet at all (a miner found none) gives a zero loss that still reaches the
    embeddings, so a training step does nothing instead of failing on a NaN mean.
    """
    a, p, n = indices
    if len(a) == 0:
        return (embeddings * 0.0).sum()
    return F.triplet_margin_loss(embeddings[a], embeddings[p], embeddings[n], margin=margin)


def _stacked_loss(outputs: torch.Tensor, labels: torch.Tensor, *, margin: float) -> torch.Tensor:
    if outputs.ndim != 3 or outputs.shape[1] != 3:
        raise ValueError(
            f"expected stacked triplet embeddings (B, 3, D), got {tuple(outputs.shape)}; "
            "use forward_fn=triplet_forward with a TripletDataset"
        )
    return F.triplet_margin_loss(outputs[:, 0], outputs[:, 1], outputs[:, 2], margin=margin)


class StackedTripletLoss(nn.Module):
    """The triplet margin loss of stacked triplet embeddings (B, 3, D) = (a, p, n), as a
    `TripletDataset` with `triplet_forward` gives them; the labels are not used."""

    def __init__(self, margin: float) -> None:
        super().__init__()
        self.margin = _check_margin(margin)

    def forward(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The batch mean; ValueError for outputs that are not (B, 3, D)."""
        return _stacked_loss(outputs, labels, margin=self.margin)


def stacked_triplet_loss(margin: float) -> StackedTripletLoss:
    """`loss_fn(outputs, labels)` for `fit` on a TripletDataset: outputs (B, 3, D) = (a, p, n)."""
    return StackedTripletLoss(margin)


_PK_HINT = (
    "draw batches with PKSampler(labels, p=..., k=...) (labkit.triplets.PKSampler), e.g. "
    "DataLoader(train_set, batch_sampler=PKSampler(train_set.labels, p=8, k=6)): every batch "
    "then holds P classes of K images each"
)


class MinedTripletLoss(nn.Module):
    """The triplet margin loss of the triplets `miner` finds in a batch of embeddings (N, D)
    with labels (N,); stacked triplets (B, 3, D) are scored as they are (nothing to mine).

    It counts per training epoch the batches that could hold a triplet; `fit` calls
    `on_train_epoch_start` / `on_train_epoch_end`. Build it with `mined_triplet_loss`, which
    checks the miner and margin.

    Attributes:
        miner: the miner's name ("batch_hard", "semi_hard", or a function's qualified name).
        margin: the loss's margin (semi-hard mining uses it too).
    """

    def __init__(self, miner: str, mine: Miner, margin: float) -> None:
        super().__init__()
        self.miner, self.margin, self._mine = miner, margin, mine
        self._batches = self._pairs = self._usable = 0  # mined, with a pair, with a triplet

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of `embeddings` (N, D) with `labels` (N,), or of stacked (B, 3, D)."""
        if embeddings.ndim == 3:  # stacked triplets (e.g. fixed validation triplets): as they are
            return _stacked_loss(embeddings, labels, margin=self.margin)
        if labels.ndim == 1:  # a batch to mine in: count it
            _, counts = torch.unique(labels, return_counts=True)
            pair = bool((counts >= 2).any())
            self._batches += 1
            self._pairs += pair
            self._usable += pair and len(counts) >= 2
        return triplet_loss(embeddings, self._mine(embeddings, labels), self.margin)

    def on_train_epoch_start(self) -> None:
        """Start counting a new epoch's batches (validation batches before it don't count)."""
        self._batches = self._pairs = self._usable = 0

    def on_train_epoch_end(self) -> None:
        """Raise ValueError if batches were mined this epoch but none could hold a triplet.

        One batch without a triplet is fine; a whole epoch of them means the loader never
        puts two images of a class together (with one of another class), so the loss is 0.0
        at every step and nothing trains. Semi-hard mining finding no triplet among pairs
        whose negatives are all easy is no error: that is a trained embedding.
        """
        batches, pairs, usable = self._batches, self._pairs, self._usable
        self.on_train_epoch_start()
        if batches == 0 or usable:
            return
        if pairs == 0:
            why = "no batch of this epoch held two images of one class"
        else:
            why = (
                f"no batch of this epoch held two images of one class and one of another "
                f"class ({pairs} of {batches} held a pair, but of a single class only)"
            )
        raise ValueError(
            f"{why}, so the miner found no triplet; {_PK_HINT}. (Each of the epoch's {batches} "
            "batches had loss 0.0: nothing trained.)"
        )


def mined_triplet_loss(miner: str | Miner, margin: float) -> MinedTripletLoss:
    """`loss_fn(embeddings, labels)` for `fit` on P x K batches: mine, then `triplet_loss`.

    Stacked triplet embeddings (B, 3, D) are scored as they are (nothing to mine), so the
    same `fit` call can validate on fixed triplets.

    Mining needs two images of a class and one of another in a batch: use a `PKSampler`.
    A batch without them gives a zero loss, but under `fit` a whole training epoch without
    one raises ValueError naming `PKSampler` (see `MinedTripletLoss.on_train_epoch_end`).

    Args:
        miner: "batch_hard", "semi_hard" (mined with this `margin`), or any
            `miner(embeddings, labels) -> (a, p, n)`.
        margin: the triplet loss margin (2.0 in the handout, for embeddings of norm 10).

    Raises:
        ValueError: for an unknown miner name, a margin that is not a finite number >= 0, or
            semi-hard mining with margin 0.
    """
    margin = _check_margin(margin)
    if not isinstance(miner, str):
        name = f"{getattr(miner, '__module__', '')}.{getattr(miner, '__qualname__', miner)}"
        return MinedTripletLoss(name, miner, margin)
    if miner not in MINERS:
        raise ValueError(f"unknown miner {miner!r}; choose one of {MINERS} or pass a function")
    if miner == "semi_hard" and margin == 0:
        raise ValueError("semi-hard mining needs margin > 0 (d_ap < d_an < d_ap + margin)")
    mine = batch_hard if miner == "batch_hard" else partial(batch_semi_hard, margin=margin)
    return MinedTripletLoss(miner, mine, margin)


@torch.no_grad()
def triplet_accuracy(outputs: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> float:
    """Fraction of triplets with d(a, n) - d(a, p) > margin: a `metric_fn` for `fit`.

    Args:
        outputs: stacked triplets (B, 3, D) (labels unused), or embeddings (N, D) with labels
            (N,): then each anchor's hardest triplet (`batch_hard`) is scored, i.e. the fraction
            of anchors whose every positive is closer than every negative; 0.0 if no anchor
            has both (keeps an epoch's mean finite).
        margin: 0 scores the ordering; the loss's margin scores triplets with zero loss.
    """
    if outputs.ndim == 3:
        a, p, n = outputs[:, 0], outputs[:, 1], outputs[:, 2]
    else:
        anchors, positives, negatives = batch_hard(outputs, labels)
        if len(anchors) == 0:
            return 0.0
        a, p, n = outputs[anchors], outputs[positives], outputs[negatives]
    gap = F.pairwise_distance(a, n) - F.pairwise_distance(a, p)  # (B,)
    return (gap > margin).float().mean().item()


def margin_violations(margin: float) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """A `metric_fn` for stacked triplets (B, 3, D): the fraction with d(a, n) < d(a, p) + margin.

    These are the triplets whose loss is not zero: the ones still violating the margin, which
    the triplet loss still pushes on (Schroff et al., 2015, eq. 1). Use it in `fit`'s
    `val_metrics` to follow it epoch by epoch on fixed test triplets.
    """
    margin = _check_margin(margin)

    @torch.no_grad()
    def violating(outputs: torch.Tensor, labels: torch.Tensor) -> float:
        if outputs.ndim != 3 or outputs.shape[1] != 3:
            raise ValueError(
                f"margin_violations needs stacked triplets (B, 3, D), got {tuple(outputs.shape)}"
            )
        a, p, n = outputs[:, 0], outputs[:, 1], outputs[:, 2]
        gap = F.pairwise_distance(a, n) - F.pairwise_distance(a, p)  # (B,)
        return (gap < margin).float().mean().item()

    return violating
