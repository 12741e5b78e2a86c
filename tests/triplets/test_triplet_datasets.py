"""TripletDataset and triplet_forward; both triplet set-ups through `labkit.training.loop.fit`."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from labkit.data import TensorImageDataset
from labkit.training.callbacks import Checkpoints
from labkit.training.loop import fit
from labkit.training.recipe import Recipe
from labkit.training.steps import Task
from labkit.triplets import (
    PKSampler,
    TripletDataset,
    TripletSampler,
    mined_triplet_loss,
    random_triplets,
    stacked_triplet_loss,
    triplet_accuracy,
    triplet_forward,
)


def _images(n: int = 40, num_classes: int = 4, size: int = 8) -> TensorImageDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % num_classes
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    images[:, 0] = (labels * 60).to(torch.uint8)[:, None, None]  # a learnable class cue
    return TensorImageDataset(images, labels)


def _model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6))


def test_items_are_stacked_triplets():
    data = _images()
    triplets = random_triplets(data.labels, 5, seed=0)
    dataset = TripletDataset(data, triplets)
    images, labels = dataset[2]
    a, p, n = (int(t[2]) for t in triplets)
    assert len(dataset) == 5
    assert images.shape == (3, 3, 8, 8) and images.dtype == torch.float32
    assert torch.equal(images[1], data[p][0])
    assert labels.tolist() == [int(data.labels[i]) for i in (a, p, n)]
    assert torch.equal(dataset[(a, p, n)][0], images)  # a triplet itself is an index too
    table = TripletDataset(data, torch.stack(triplets, dim=1))  # (T, 3) form
    assert torch.equal(table[2][0], images)


def test_dataset_without_fixed_triplets():
    dataset = TripletDataset(_images())
    assert dataset[(0, 4, 1)][1].tolist() == [0, 0, 1]
    with pytest.raises(TypeError, match="no fixed triplets, hence no length; pass triplets="):
        len(dataset)
    with pytest.raises(TypeError, match=r"index 3 needs fixed triplets; .* \(a, p, n\) tuples"):
        dataset[3]
    with pytest.raises(ValueError, match=r"triplets must be .* got shape \(4, 2\)"):
        TripletDataset(_images(), torch.zeros(4, 2, dtype=torch.long))


def test_triplet_forward_embeds_all_three_in_one_pass():
    model = _model()
    inputs = torch.randn(5, 3, 3, 8, 8)
    outputs = triplet_forward(model, inputs)
    assert outputs.shape == (5, 3, 6)
    assert torch.allclose(outputs[3, 2], model(inputs[3, 2:3])[0], atol=1e-6)
    plain = torch.randn(5, 3, 8, 8)  # a plain batch of images passes straight through
    assert torch.allclose(triplet_forward(model, plain), model(plain))
    with pytest.raises(ValueError, match=r"expected stacked triplets \(B, 3, C, H, W\)"):
        triplet_forward(model, torch.randn(5, 2, 3, 8, 8))


def _fit_random_triplets(num_epochs: int, folder=None, resume: bool = False):
    data = _images()
    loader = DataLoader(TripletDataset(data), batch_size=8, sampler=TripletSampler(data.labels, 24))
    model = _model()
    history = fit(
        model,
        loader,
        Recipe(num_epochs=num_epochs, lr=0.01, batch_size=8, monitor="train_loss"),
        task=Task(
            loss_fn=stacked_triplet_loss(margin=1.0),
            metric_fn=triplet_accuracy,
            forward_fn=triplet_forward,
        ),
        callbacks=[Checkpoints(folder, resume=resume)],
    )
    return model, history


def test_fit_with_random_triplets_redrawn_each_epoch():
    torch.manual_seed(0)
    _, history = _fit_random_triplets(1)
    assert len(history) == 1
    assert torch.isfinite(torch.tensor(history[["train_loss", "train_acc"]].values)).all()


def test_fit_resume_replays_the_triplet_draws(tmp_path, interrupt_fit):
    torch.manual_seed(0)
    straight, history = _fit_random_triplets(2, tmp_path / "a")
    torch.manual_seed(0)
    interrupt_fit(2)
    with pytest.raises(KeyboardInterrupt):
        _fit_random_triplets(2, tmp_path / "b")
    torch.manual_seed(123)  # another process: the global generators start elsewhere
    resumed, history_b = _fit_random_triplets(2, tmp_path / "b", resume=True)
    assert history_b["train_loss"].tolist() == history["train_loss"].tolist()
    assert all(
        torch.equal(x, y) for x, y in zip(straight.parameters(), resumed.parameters(), strict=True)
    )


@pytest.mark.parametrize("miner", ["batch_hard", "semi_hard"])
def test_fit_with_pk_batches_and_mining(miner):
    torch.manual_seed(0)
    data = _images()
    loader = DataLoader(data, batch_sampler=PKSampler(data.labels, p=2, k=4))
    val_loader = DataLoader(data, batch_size=16)
    model = _model()
    history = fit(
        model,
        (loader, val_loader),
        Recipe(num_epochs=1, lr=0.01, momentum=0.0),
        task=Task(loss_fn=mined_triplet_loss(miner, margin=1.0), metric_fn=triplet_accuracy),
    )
    assert len(history) == 1 and len(loader) == 5
    row = history.iloc[0]
    assert all(torch.isfinite(torch.tensor(row[c])) for c in ["train_loss", "val_loss", "val_acc"])
