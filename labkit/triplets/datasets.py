"""Triplets of images from a dataset of (image, label) items, and the forward pass over them.

Used in: 03_facenet_knn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = ["TripletDataset", "triplet_forward"]

Triplet = tuple[int, int, int]


class TripletDataset(Dataset):
    """Items are (images (3, C, H, W), labels (3,)): an anchor, a positive and a negative.

    Images come from `dataset[i]` (e.g. a `TensorImageDataset`: already decoded, with its
    transform applied to each of the three), so nothing is read from disk per triplet.

    Args:
        dataset: items (image (C, H, W), label).
        triplets: fixed triplets, `(anchor_idx, positive_idx, negative_idx)` of (T,) or a
            (T, 3) array; item `i` is triplet `i`. None: the dataset has no length and is
            indexed by `(a, p, n)` tuples, which `TripletSampler` yields (a fresh draw every
            epoch). Both forms of index work when triplets are given.
    """

    def __init__(
        self,
        dataset: Dataset,
        triplets: Sequence[torch.Tensor] | torch.Tensor | np.ndarray | None = None,
    ) -> None:
        self.dataset = dataset
        self.triplets: torch.Tensor | None = None  # (T, 3) int64
        if triplets is not None:
            table = torch.as_tensor(
                np.stack([np.asarray(t) for t in triplets], axis=1)
                if isinstance(triplets, (tuple, list))
                else np.asarray(triplets)
            )
            if table.ndim != 2 or table.shape[1] != 3 or table.dtype.is_floating_point:
                raise ValueError(
                    "triplets must be (anchor_idx, positive_idx, negative_idx) int arrays of "
                    f"one length, or a (T, 3) int array; got shape {tuple(table.shape)}"
                )
            self.triplets = table.long()

    def __len__(self) -> int:
        """The number of fixed triplets."""
        if self.triplets is None:
            raise TypeError(
                "this TripletDataset has no fixed triplets, hence no length; pass triplets=, "
                "or load it with sampler=TripletSampler(labels, triplets_per_epoch)"
            )
        return len(self.triplets)

    def __getitem__(self, index: int | Triplet) -> tuple[torch.Tensor, torch.Tensor]:
        """Triplet `index` (an int, with fixed triplets) or the triplet `(a, p, n)` itself."""
        if isinstance(index, (tuple, list)):
            triplet = [int(i) for i in index]
        elif self.triplets is not None:
            triplet = self.triplets[index].tolist()
        else:
            raise TypeError(
                f"index {index!r} needs fixed triplets; without them index by (a, p, n) tuples"
            )
        items = [self.dataset[i] for i in triplet]
        images = torch.stack([image for image, _ in items])  # (3, C, H, W)
        labels = torch.tensor([int(label) for _, label in items], dtype=torch.int64)  # (3,)
        return images, labels


def triplet_forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """`forward_fn` for `fit`: stacked triplets (B, 3, C, H, W) -> (B, 3, D) in one pass.

    The 3B images go through the model as one batch, so batch norm sees all of them. A plain
    batch (N, C, H, W) gives (N, D), so one `fit` call can train on P x K batches and validate
    on fixed triplets.
    """
    if inputs.ndim == 4:
        return model(inputs)
    if inputs.ndim != 5 or inputs.shape[1] != 3:
        raise ValueError(
            f"expected stacked triplets (B, 3, C, H, W) or images (N, C, H, W), got "
            f"{tuple(inputs.shape)}; load a TripletDataset or an image dataset"
        )
    embeddings = model(inputs.flatten(0, 1))  # (3B, D)
    return embeddings.unflatten(0, inputs.shape[:2])  # (B, 3, D)
