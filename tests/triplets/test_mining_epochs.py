"""A training epoch in which no batch could hold a mined triplet is an error naming PKSampler.

Batch-hard and semi-hard mining need two images of one class and one of another in a batch;
an ordinary loader over many classes rarely gives that, and training then ran at loss 0.0
with unchanged weights. One such batch is fine; a whole epoch of them is the error.
"""

import pytest
import torch
from lab03_tiny import tiny_settings
from torch.utils.data import DataLoader

from labkit.data import TensorImageDataset
from labkit.labs import facenet_knn
from labkit.labs.facenet_knn import recipe_loss, train_embedding
from labkit.training.runs import _loss
from labkit.triplets import batch_hard, mined_triplet_loss

PROFILE = tiny_settings(width=8)  # a narrow ResNet-18: fast
NO_TRIPLET = (
    r"no batch of this epoch held two images of one class, so the miner found no triplet; "
    r"draw batches with PKSampler\(labels, p=\.\.\., k=\.\.\.\)"
)


def _images(labels: list[int]) -> TensorImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (len(labels), 3, 8, 8), dtype=torch.uint8, generator=g)
    return TensorImageDataset(images, torch.tensor(labels))


def _train_on(monkeypatch, recipe: str, loader: DataLoader):
    """Lab 03's `train_embedding`, its P x K loader swapped for `loader`."""
    monkeypatch.setattr(facenet_knn, "recipe_loader", lambda *args: loader)
    return train_embedding(recipe, loader.dataset, None, PROFILE, progress=False)


@pytest.mark.parametrize("recipe", ["batch_hard", "semi_hard"])
@pytest.mark.parametrize(
    "loader",
    [
        # classes interleaved, in order: every batch of two holds two classes
        lambda: DataLoader(_images([0, 1, 2, 3] * 3), batch_size=2),
        # shuffled, one image per class: no batch can hold a pair
        lambda: DataLoader(_images(list(range(8))), batch_size=4, shuffle=True),
    ],
    ids=["in-order", "shuffled"],
)
def test_an_epoch_without_a_triplet_names_the_pk_sampler(monkeypatch, recipe, loader):
    with pytest.raises(ValueError, match=NO_TRIPLET) as caught:
        _train_on(monkeypatch, recipe, loader())
    assert "labkit.triplets.PKSampler" in str(caught.value)


def test_single_class_batches_give_no_negative(monkeypatch):
    loader = DataLoader(_images([0, 0, 0, 1, 1, 1]), batch_size=3)  # pairs, never a negative
    with pytest.raises(ValueError, match=r"no batch of this epoch held .* of another class"):
        _train_on(monkeypatch, "batch_hard", loader)


def test_one_batch_without_a_triplet_is_fine(monkeypatch):
    # first batch: three classes, no pair; second: a pair of class 3 and a negative
    loader = DataLoader(_images([0, 1, 2, 2, 3, 3]), batch_size=3)
    _, history = _train_on(monkeypatch, "batch_hard", loader)
    assert len(history) == 2 and history["train_loss"].iloc[0] > 0  # it trained


def test_the_count_restarts_every_epoch_and_skips_validation():
    loss = recipe_loss("batch_hard", 2.0)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    pairs, distinct = torch.tensor([0, 0, 1, 1, 2, 2]), torch.arange(6)
    loss.on_train_epoch_start()
    loss(x, distinct)
    loss(x, pairs)
    loss.on_train_epoch_end()  # one batch had triplets: fine
    loss(x, pairs)  # validation, between the epochs: not counted
    loss.on_train_epoch_start()
    assert loss(x, distinct).item() == 0.0
    with pytest.raises(ValueError, match=NO_TRIPLET):
        loss.on_train_epoch_end()
    loss.on_train_epoch_start()
    loss(x.view(2, 3, 4), distinct.view(2, 3))  # stacked triplets: nothing to mine
    loss.on_train_epoch_end()


def test_semi_hard_finding_none_among_easy_triplets_is_no_error():
    # classes far apart: every negative is easy, so semi-hard mining rightly finds none
    x = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    loss = mined_triplet_loss("semi_hard", margin=1.0)
    loss.on_train_epoch_start()
    assert loss(x, torch.tensor([0, 0, 1, 1])).item() == 0.0
    loss.on_train_epoch_end()


def test_run_settings_describe_the_loss_by_its_miner_and_margin():
    # a plain module: its settings are its fields, not arguments bound into a partial
    assert _loss(mined_triplet_loss("batch_hard", 2.0)) == {
        "class": "MinedTripletLoss",
        "miner": "batch_hard",
        "margin": 2.0,
    }
    assert _loss(mined_triplet_loss("semi_hard", 1.0))["miner"] == "semi_hard"
    assert _loss(mined_triplet_loss(batch_hard, 2.0))["miner"] == (
        "labkit.triplets.miners.batch_hard"
    )
