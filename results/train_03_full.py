"""Train lab 03's three recipes in the full profile, into the notebook's own run folders.

The notebook trains the same runs with the same seed through `train_embedding`, resuming from
these folders, so afterwards `labkit run 03 --profile full` only loads and evaluates them.
This lets the long CPU training run in the background, one recipe after another:

    OMP_NUM_THREADS=2 python results/train_03_full.py [random batch_hard semi_hard]
"""

from __future__ import annotations

import sys

from labkit.data.loaders import load_digits_data
from labkit.session import start_lab
from labkit.triplets import RECIPES, train_embedding, validation_loader

LAB = "03_facenet_knn"


def main(recipes: list[str]) -> None:
    """Train each recipe to the profile's last epoch (resuming where a run stopped)."""
    lab = start_lab(
        LAB,
        "full-profile training of the three triplet recipes",
        profile="full",
        sizes=("triplet_epochs", "triplets_per_epoch", "triplet_batch_size"),
    )
    data = load_digits_data(lab.profile)
    val = validation_loader(data.test, lab.profile, seed=lab.seed)
    for recipe in recipes:
        _, history = train_embedding(
            recipe,
            data.train,
            val,
            lab.profile,
            device=lab.device,
            seed=lab.seed,
            checkpoint_dir=lab.run_dir(recipe),
        )
        print(recipe, history.to_string(index=False), sep="\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(RECIPES))
