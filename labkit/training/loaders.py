"""Seeded data loaders: a training loader whose shuffling a seed fixes (and a resumed run
replays), an evaluation loader in order; under torchrun each process reads its share.

Used in: labkit.data.digits (labs 02 and 03), the bird labs' modules (01, 04, 05).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from labkit.training import distributed

__all__ = ["seeded_loader"]


def seeded_loader(
    dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int = 0, num_workers: int = 0
) -> DataLoader:
    """A DataLoader of `batch_size`, shuffled (`shuffle=True`) by its own generator seeded with
    `seed`, or in order.

    Its generator is saved in `fit`'s checkpoints, so a resumed run draws the same batches.
    Under torchrun the loader gets a `DistributedSampler` seeded with `seed` instead, and each
    process reads its share. Random augmentations draw from torch's global generator in the
    notebook's process (`labkit.seed_everything`), and from per-worker seeds derived from
    `seed` when `num_workers > 0` (the workers then persist from one epoch to the next).
    """
    workers = {"num_workers": num_workers, "persistent_workers": num_workers > 0}
    if distributed.active():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **workers)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, **workers
    )
