"""Lab 03's settings at a toy size, for tests that train: 8-pixel images, 6-d embeddings,
2 epochs of 20 triplets (or P x K = 2 x 6 batches), 10 validation triplets."""

from labkit.labs.facenet_knn import settings


def tiny_settings(**overrides):
    """The smoke profile shrunk further; `overrides` change single fields (e.g. width=8)."""
    fields = {
        "image_size": 8,
        "embedding_size": 6,
        "triplets_per_epoch": 20,
        "training": {"batch_size": 4, "num_epochs": 2, "step_every": 1},
        "pk_classes": 2,
        "pk_images": 6,
        "val_triplets": 10,
        "eval_batch_size": 12,
    }
    return settings("smoke", **{**fields, **overrides})
