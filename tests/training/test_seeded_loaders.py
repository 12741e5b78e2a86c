"""labkit.training.loaders: a seed fixes the shuffling, evaluation reads in order."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from labkit.training.loaders import seeded_loader


def _order(loader) -> list[int]:
    return [int(i) for (batch,) in loader for i in batch]


def test_the_seed_fixes_the_order_and_the_epochs_differ():
    data = TensorDataset(torch.arange(20))
    first, again = (seeded_loader(data, 4, shuffle=True, seed=3) for _ in range(2))
    assert _order(first) == _order(again) and sorted(_order(first)) == list(range(20))
    assert _order(first) != _order(first)  # the next epoch: another order from the generator
    assert _order(seeded_loader(data, 4, shuffle=True, seed=4)) != _order(
        seeded_loader(data, 4, shuffle=True, seed=3)
    )


def test_without_shuffling_the_order_is_the_datasets():
    loader = seeded_loader(TensorDataset(torch.arange(10)), 3, shuffle=False)
    assert _order(loader) == list(range(10)) and loader.generator is None
    assert loader.batch_size == 3 and loader.num_workers == 0
