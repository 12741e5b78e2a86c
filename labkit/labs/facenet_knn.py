"""Lab 03, FaceNet-style embeddings: its settings for each profile and its three recipes.

- "random": the handout's recipe, fresh random triplets every epoch (`TripletSampler`);
- "batch_hard" / "semi_hard": P x K batches (`PKSampler`), triplets mined inside each batch.

All three see the same number of images per epoch (3 x `triplets_per_epoch`) in steps of the
same size (3 x `training.batch_size` triplets), train by one recipe (`training`: SGD at `lr`
divided by 3 every `step_every` epochs, the handout's schedule), and validate on one fixed set
of test triplets, so their curves and results compare.

`full` keeps the handout's settings (32 px, 8,000 triplets an epoch, 5 epochs). `cpu` trains
ResNet-18 at half the width (a quarter of the multiply-adds) on 16 px images for 3 epochs of
8,000 triplets, the rate divided by 3 after epoch 2: every recipe above 96% KNN test accuracy in
about six and a half minutes on two cores (RESULTS.md).

Used in: 03_facenet_knn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from labkit.config import seed_everything
from labkit.labs.digits import DigitsSettings, load_digits
from labkit.labs.session import LabEntry
from labkit.labs.settings import rehearse_as, shown, shown_fields
from labkit.models import count_layers, count_parameters
from labkit.models.resnet import ResNetEmbedding, resnet18_embedding
from labkit.plots import plot_history, plot_image_grid
from labkit.report import show_headline
from labkit.training.callbacks import Checkpoints, ProgressBar
from labkit.training.loop import fit
from labkit.training.metrics import accuracy
from labkit.training.model_utils import eval_mode, model_device
from labkit.training.recipe import Recipe
from labkit.training.steps import Task
from labkit.triplets.browser import error_browser
from labkit.triplets.datasets import TripletDataset, triplet_forward
from labkit.triplets.embeddings import embed, error_table, knn_classifier, knn_predict, project_2d
from labkit.triplets.figures import plot_distance_histograms, plot_embedding_2d
from labkit.triplets.gallery import plot_error_gallery, save_error_gallery
from labkit.triplets.losses import (
    LossFn,
    margin_violations,
    mined_triplet_loss,
    stacked_triplet_loss,
    triplet_accuracy,
)
from labkit.triplets.samplers import PKSampler, TripletSampler, random_triplets

__all__ = [  # what 03_facenet_knn uses, and nothing else
    "RECIPES",
    "accuracy",
    "count_layers",
    "count_parameters",
    "embed",
    "embedding_network",
    "error_browser",
    "error_table",
    "knn_classifier",
    "knn_predict",
    "load_digits",
    "plot_distance_histograms",
    "plot_embedding_2d",
    "plot_error_gallery",
    "plot_history",
    "plot_image_grid",
    "project_2d",
    "random_triplets",
    "recipe_loader",
    "save_error_gallery",
    "seed_everything",
    "show_headline",
    "start",
    "train_embedding",
    "triplet_distances",
    "validation_loader",
]

LAB = "03_facenet_knn"
TEACHES = "triplet embeddings, hard-triplet mining, KNN and class centres"

# the handout's: SGD at 0.008 (momentum 0.9, weight decay 5e-4), divided by 3 every 4 epochs,
# 5 epochs of steps of 16 triplets
HANDOUT = Recipe(
    num_epochs=5,
    lr=0.008,
    batch_size=16,
    momentum=0.9,
    weight_decay=5e-4,
    schedule="step",
    step_every=4,
    step_gamma=1 / 3,
)


@dataclass(frozen=True)
class Settings(DigitsSettings):
    """Every size and rate lab 03 uses; the handout's values unless noted."""

    embedding_size: int = field(default=128, metadata=shown("embedding size {}"))
    # ResNet-18's stem and first-stage channels (64); 32 is a narrower variant, 3x faster
    width: int = field(default=64, metadata=shown("width {}"))
    alpha: float = 10.0  # embeddings are L2-normalised, then scaled to this norm
    margin: float = 2.0  # triplet loss margin (for embeddings of norm alpha)
    triplets_per_epoch: int = field(
        default=8000, metadata={**shown("{} triplets an epoch"), **rehearse_as(6)}
    )
    # how each of the three recipes trains; its batch_size counts triplets a step. Override
    # single fields with a dict, e.g. start(training={"num_epochs": 2})
    training: Recipe = field(
        default=HANDOUT,
        metadata=shown_fields(num_epochs="{} epochs", batch_size="{} triplets a step"),
    )
    # mining batches hold P classes x K images: 48 images, as many as 16 random triplets
    # P and K (ours; the handout's bonus leaves them open)
    pk_classes: int = field(default=8, metadata=rehearse_as(2))
    pk_images: int = field(default=6, metadata=rehearse_as(3))
    knn_neighbors: int = 5  # k of the KNN classifier
    # fixed test triplets scored after every epoch (ours)
    val_triplets: int = field(default=1000, metadata=rehearse_as(6))

    def __post_init__(self) -> None:
        """Check field types (see `LabSettings`) and that the three recipes keep one budget:
        a P x K batch holds as many images as a step of random triplets."""
        super().__post_init__()
        step = self.training.batch_size
        images = 3 * step
        if self.pk_classes * self.pk_images != images:
            fits = [(p, images // p) for p in range(2, 11) if images % p == 0 and images // p > 1]
            hint = ", or ".join(f"pk_classes={p}, pk_images={k}" for p, k in fits[-2:])
            raise ValueError(
                f"pk_classes x pk_images = {self.pk_classes} x {self.pk_images} must equal "
                f"3 x training.batch_size = {images} (the triplets a step), so that every "
                "recipe takes steps of one size; change them in the same call, e.g. "
                f'start(training={{"batch_size": {step}}}, '
                f"{hint or 'a batch_size divisible by 2'})"
            )


PROFILES = {
    "full": Settings(profile="full"),
    "cpu": Settings(
        profile="cpu",
        image_size=16,
        width=32,
        training=replace(HANDOUT, num_epochs=3, step_every=2),
        val_triplets=300,
    ),
    "smoke": Settings(
        profile="smoke",
        image_size=16,
        width=32,
        train_per_class=10,
        test_per_class=10,
        training=replace(HANDOUT, num_epochs=2, step_every=1),
        triplets_per_epoch=96,
        val_triplets=48,
    ),
}


ENTRY = LabEntry(LAB, TEACHES, PROFILES)
settings, start = ENTRY.settings, ENTRY.start  # settings("full", training={"num_epochs": 2})


RECIPES = ("random", "batch_hard", "semi_hard")


def _check_recipe(recipe: str) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")
    return recipe


def _labels(dataset: Dataset) -> torch.Tensor:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise TypeError(
            f"{type(dataset).__name__} has no .labels; pass a labkit TensorImageDataset "
            "(e.g. load_digits(settings).train)"
        )
    return torch.as_tensor(labels)


def recipe_loader(recipe: str, dataset: Dataset, settings: Settings) -> DataLoader:
    """One epoch of `recipe`'s training batches: stacked triplets, or P x K images.

    Draws come from torch's global generator, so `seed_everything` fixes them and a resumed
    `fit` replays them.
    """
    labels = _labels(dataset)
    if _check_recipe(recipe) == "random":
        return DataLoader(
            TripletDataset(dataset),
            batch_size=settings.training.batch_size,
            sampler=TripletSampler(labels, settings.triplets_per_epoch),
            num_workers=settings.num_workers,
        )
    batch = settings.pk_classes * settings.pk_images
    images = 3 * settings.triplets_per_epoch
    sampler = PKSampler(
        labels,
        settings.pk_classes,
        settings.pk_images,
        batches_per_epoch=math.ceil(images / batch),
    )
    return DataLoader(dataset, batch_sampler=sampler, num_workers=settings.num_workers)


def validation_loader(dataset: Dataset, settings: Settings, *, seed: int = 0) -> DataLoader:
    """`settings.val_triplets` fixed random triplets of `dataset` (the test set), in order,
    as many a batch as `settings.eval_batch_size` holds images (at least one triplet)."""
    triplets = random_triplets(_labels(dataset), settings.val_triplets, seed=seed)
    return DataLoader(
        TripletDataset(dataset, triplets),
        batch_size=max(1, settings.eval_batch_size // 3),
        num_workers=settings.num_workers,
    )


def recipe_loss(recipe: str, margin: float) -> LossFn:
    """The `loss_fn` of `recipe`: the triplet margin loss, mined for the P x K recipes."""
    if _check_recipe(recipe) == "random":
        return stacked_triplet_loss(margin)
    return mined_triplet_loss(recipe, margin)


def embedding_network(settings: Settings, device: torch.device | str = "cpu") -> ResNetEmbedding:
    """ResNet-18 embedding of the settings' size on `device`, in channels-last memory format.

    Channels-last is the layout oneDNN and cuDNN convolve fastest: on a 2-core CPU it cut a
    training step of 48 images at 32 px from 1.35 s to about 1.0 s. The weights are unchanged.
    """
    model = resnet18_embedding(settings.embedding_size, settings.alpha, width=settings.width)
    return model.to(device, memory_format=torch.channels_last)


def train_embedding(
    recipe: str,
    train_set: Dataset,
    val_loader: DataLoader | None,
    settings: Settings,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    runs_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[ResNetEmbedding, pd.DataFrame]:
    """Seed, build a fresh embedding network and train it with `recipe`'s batches and loss
    through `fit`, as `settings.training` says.

    With `runs_dir` (e.g. `lab.run_dir(recipe)`) the run is checkpointed in a folder keyed by
    its settings and resumes from there: a finished run only loads, other settings train anew.

    Returns:
        The trained model (eval mode is the caller's to set) and `fit`'s history, whose
        accuracies are triplet accuracies (the fraction with d(a, n) > d(a, p)), with the column
        `val_violating`: the fraction of the fixed test triplets still violating the margin.
    """
    _check_recipe(recipe)
    seed_everything(seed)  # the same start for every recipe, wherever it runs in a notebook
    model = embedding_network(settings, device)
    task = Task(
        loss_fn=recipe_loss(recipe, settings.margin),
        metric_fn=triplet_accuracy,
        forward_fn=triplet_forward,
        val_metrics={"violating": margin_violations(settings.margin)},
    )
    callbacks = [
        ProgressBar(recipe, enabled=progress),
        Checkpoints(runs_dir, per_settings=True, info={"seed": seed, "triplets": recipe}),
    ]
    loaders = (recipe_loader(recipe, train_set, settings), val_loader)
    history = fit(model, loaders, settings.training, task=task, callbacks=callbacks)
    return model, history


@torch.no_grad()
def triplet_distances(
    model: torch.nn.Module, loader: DataLoader
) -> tuple[torch.Tensor, torch.Tensor]:
    """d(a, p) and d(a, n), each (B,) float32 on the CPU, of every triplet of `loader`.

    `loader` yields stacked triplets (see `validation_loader`); the model runs in eval mode and
    is left in the mode it was in.
    """
    device = model_device(model)
    ap, an = [], []
    with eval_mode(model):
        for images, _ in loader:
            out = triplet_forward(model, images.to(device))  # (b, 3, D)
            ap.append(torch.nn.functional.pairwise_distance(out[:, 0], out[:, 1]).cpu())
            an.append(torch.nn.functional.pairwise_distance(out[:, 0], out[:, 2]).cpu())
    return torch.cat(ap), torch.cat(an)
