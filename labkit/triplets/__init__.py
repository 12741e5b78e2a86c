"""Triplet-loss training, split by concept as in pytorch-metric-learning.

- distances: embeddings (N, D) -> (N, N) matrix (`pairwise_distances`);
- samplers: which images go into a batch (`random_triplets`, `TripletSampler` for a fresh draw
  every epoch, of all classes or of chosen ones, `PKSampler` for P classes x K images);
- miners: index triplets `(anchor_idx, positive_idx, negative_idx)` inside a batch, under
  `no_grad` (`batch_hard`, `batch_semi_hard`);
- losses: embeddings plus indices -> loss (`triplet_loss`), and `loss_fn`s / `metric_fn` for
  `labkit.training.loop.fit`;
- datasets: `TripletDataset` (stacked anchor, positive, negative images), `triplet_forward`.
- embeddings: embed a dataset, KNN, nearest neighbours, the table of errors (`error_table`),
  the 2-d projection (`project_2d`);
- gallery, browser: the errors beside their nearest training images (`plot_error_gallery`,
  `save_error_gallery`; `error_browser` shows one at a time); figures: the embedding in 2-d
  and the triplets' distances (`plot_embedding_2d`, `plot_distance_histograms`). Import these
  from their modules: they bring matplotlib.

Lab 03's three recipes on one budget live in its lab module, `labkit.labs.facenet_knn`.

The two ways to train with `fit`::

    # the handout's random triplets, redrawn every epoch
    recipe = Recipe(num_epochs=5, lr=0.008, batch_size=16)
    loader = DataLoader(TripletDataset(train_set), batch_size=recipe.batch_size,
                        sampler=TripletSampler(train_set.labels, 8000))
    fit(model, loader, recipe, task=Task(loss_fn=stacked_triplet_loss(margin=2.0),
        metric_fn=triplet_accuracy, forward_fn=triplet_forward))

    # P x K batches, triplets mined in each batch
    loader = DataLoader(train_set, batch_sampler=PKSampler(train_set.labels, p=8, k=8))
    fit(model, loader, recipe, task=Task(loss_fn=mined_triplet_loss("batch_hard", margin=2.0),
        metric_fn=triplet_accuracy))

Used in: 03_facenet_knn.
"""

from labkit.triplets.datasets import TripletDataset, triplet_forward
from labkit.triplets.distances import pairwise_distances
from labkit.triplets.losses import (
    MINERS,
    MinedTripletLoss,
    StackedTripletLoss,
    margin_violations,
    mined_triplet_loss,
    stacked_triplet_loss,
    triplet_accuracy,
    triplet_loss,
)
from labkit.triplets.miners import batch_hard, batch_semi_hard
from labkit.triplets.samplers import (
    PKSampler,
    TripletSampler,
    random_triplets,
)

__all__ = [
    "MINERS",
    "MinedTripletLoss",
    "PKSampler",
    "StackedTripletLoss",
    "TripletDataset",
    "TripletSampler",
    "batch_hard",
    "batch_semi_hard",
    "mined_triplet_loss",
    "pairwise_distances",
    "random_triplets",
    "stacked_triplet_loss",
    "margin_violations",
    "triplet_accuracy",
    "triplet_forward",
    "triplet_loss",
]
