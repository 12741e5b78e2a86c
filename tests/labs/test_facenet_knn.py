"""Lab 03's module: its settings per profile, and three recipes on one budget through fit."""

import math
from dataclasses import replace

import pytest
import torch
from lab03_tiny import tiny_settings

from labkit.data import TensorImageDataset
from labkit.labs.facenet_knn import (
    PROFILES,
    RECIPES,
    embedding_network,
    recipe_loader,
    recipe_loss,
    settings,
    train_embedding,
    triplet_distances,
    validation_loader,
)
from labkit.models import count_layers
from labkit.triplets import mined_triplet_loss, stacked_triplet_loss

PROFILE = tiny_settings()


def test_full_profile_keeps_the_handouts_settings():
    full = PROFILES["full"]
    assert (full.image_size, full.embedding_size, full.alpha, full.margin) == (32, 128, 10.0, 2.0)
    training = full.training
    assert (full.triplets_per_epoch, training.batch_size) == (8000, 16)
    assert (training.lr, training.num_epochs, training.step_every) == (0.008, 5, 4)
    assert (training.schedule, training.step_gamma) == ("step", pytest.approx(1 / 3))
    assert (training.momentum, training.weight_decay, full.knn_neighbors) == (0.9, 5e-4, 5)
    assert full.train_per_class is None and full.test_per_class is None
    for profile in PROFILES.values():  # a mining batch holds as many images as random triplets
        assert profile.pk_classes * profile.pk_images == 3 * profile.training.batch_size


def test_a_pk_batch_must_hold_as_many_images_as_a_step_of_triplets():
    expected = (
        r"pk_classes x pk_images = 8 x 6 must equal 3 x training.batch_size = 96.*"
        r'start\(training=\{"batch_size": 32\}, pk_classes=6, pk_images=16, or pk_classes=8, '
        r"pk_images=12\)"
    )
    with pytest.raises(ValueError, match=expected):
        settings("full", training={"batch_size": 32})
    assert settings("full", training={"batch_size": 32}, pk_images=12).pk_images == 12


def test_cpu_and_smoke_are_smaller_and_keep_the_loss():
    full, cpu, smoke = PROFILES["full"], PROFILES["cpu"], PROFILES["smoke"]
    for small in (cpu, smoke):
        assert small.image_size < full.image_size
        assert small.triplets_per_epoch * small.training.num_epochs < full.triplets_per_epoch * 5
        assert (small.embedding_size, small.alpha, small.margin) == (128, 10.0, 2.0)
    assert cpu.train_per_class is None and cpu.test_per_class is None  # every image counts
    assert smoke.train_per_class is not None


def _images(n: int = 24, num_classes: int = 4) -> TensorImageDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % num_classes
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    return TensorImageDataset(images, labels)


def test_every_recipe_sees_the_same_images_per_epoch_in_steps_of_one_size():
    data = _images()
    random_batches = list(recipe_loader("random", data, PROFILE))
    assert len(random_batches) == 5  # 20 triplets, 4 per step
    images, labels = random_batches[0]
    assert images.shape == (4, 3, 3, 8, 8) and labels.shape == (4, 3)
    for recipe in ("batch_hard", "semi_hard"):
        batches = list(recipe_loader(recipe, data, PROFILE))
        assert len(batches) == math.ceil(3 * 20 / 12)  # 60 images in P x K = 12 per step
        images, labels = batches[0]
        assert images.shape == (12, 3, 8, 8)  # as many as 4 triplets
        assert sorted(torch.bincount(labels).tolist())[-2:] == [6, 6]  # 2 classes x 6 images


def test_validation_triplets_are_fixed():
    data = _images()
    loader = validation_loader(data, PROFILE, seed=0)
    first = [labels for _, labels in loader]
    second = [labels for _, labels in loader]
    assert sum(len(x) for x in first) == 10
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    stacked = torch.cat(first)  # (T, 3): anchor and positive share a class, negative not
    assert (stacked[:, 0] == stacked[:, 1]).all() and (stacked[:, 0] != stacked[:, 2]).all()


def test_recipe_losses_and_unknown_names():
    x = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(12) % 3
    stacked = x.view(4, 3, 6)
    assert torch.equal(
        recipe_loss("random", 2.0)(stacked, labels.view(4, 3)),
        stacked_triplet_loss(2.0)(stacked, labels.view(4, 3)),
    )
    assert torch.equal(
        recipe_loss("semi_hard", 2.0)(x, labels), mined_triplet_loss("semi_hard", 2.0)(x, labels)
    )
    with pytest.raises(ValueError, match=r"unknown recipe 'hard'.*batch_hard"):
        recipe_loader("hard", _images(), PROFILE)
    with pytest.raises(TypeError, match=r"list has no \.labels"):
        recipe_loader("random", [(torch.zeros(3, 8, 8), 0)], PROFILE)


def test_embedding_network_has_the_settings_size_and_norm():
    model = embedding_network(PROFILE).eval()
    out = model(torch.randn(5, 3, 8, 8))
    assert out.shape == (5, 6)
    assert torch.allclose(out.norm(dim=1), torch.full((5,), PROFILE.alpha))
    assert count_layers(model, shortcuts=False) == 18


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_train_embedding_is_seeded_follows_the_schedule_and_resumes(recipe, tmp_path):
    data = _images()
    val = validation_loader(data, PROFILE)
    folder = tmp_path / recipe
    model, history = train_embedding(recipe, data, val, PROFILE, runs_dir=folder, progress=False)
    assert history["lr"].tolist() == pytest.approx([0.008, 0.008 / 3])  # / 3 every epoch here
    assert history[["train_loss", "val_loss", "val_acc", "val_violating"]].notna().all().all()
    again, same = train_embedding(recipe, data, val, PROFILE, progress=False)  # same seed
    assert same["train_loss"].tolist() == history["train_loss"].tolist()
    loaded, finished = train_embedding(recipe, data, val, PROFILE, runs_dir=folder, progress=False)
    assert finished["train_loss"].tolist() == history["train_loss"].tolist()  # nothing retrained
    for a, b, c in zip(model.parameters(), again.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert len(list(folder.iterdir())) == 1
    train_embedding(recipe, data, val, PROFILE, seed=5, runs_dir=folder, progress=False)
    assert len(list(folder.iterdir())) == 2  # another seed is another run, beside the first


def test_triplet_distances_are_those_of_each_stacked_triplet_and_keep_the_mode():
    data = _images()
    loader = validation_loader(data, PROFILE)
    model = embedding_network(PROFILE).train()
    ap, an = triplet_distances(model, loader)
    assert model.training and ap.shape == an.shape == (10,)
    model.eval()
    rows = []
    with torch.no_grad():
        for images, _ in loader:
            for triplet in images:  # (3, C, H, W), one at a time
                a, p, n = model(triplet)
                rows.append((torch.dist(a, p).item(), torch.dist(a, n).item()))
    assert ap.tolist() == pytest.approx([r[0] for r in rows], abs=1e-4)
    assert an.tolist() == pytest.approx([r[1] for r in rows], abs=1e-4)


def test_validation_loader_with_an_evaluation_batch_under_three_images():
    # found by the full profile's rehearsal: eval_batch_size 2 gave DataLoader(batch_size=0)
    data = _images()
    for eval_batch_size in (1, 2):
        loader = validation_loader(data, replace(PROFILE, eval_batch_size=eval_batch_size))
        assert loader.batch_size == 1 and sum(len(x) for _, x in loader) == 10
