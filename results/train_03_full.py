"""Train lab 03's three recipes in the full profile, into the notebook's own run folders.

The notebook trains the same runs with the same seed and settings through `train_embedding`,
resuming from these folders, so afterwards `labkit run 03 --profile full` only loads and
evaluates them. This lets the long CPU training run in the background, one recipe after another:

    OMP_NUM_THREADS=2 python results/train_03_full.py [random batch_hard semi_hard]
"""

from __future__ import annotations

import sys

from labkit.labs import facenet_knn
from labkit.labs.digits import load_digits


def main(recipes: list[str]) -> None:
    """Train each recipe to the profile's last epoch (resuming where a run stopped)."""
    lab = facenet_knn.start("full")
    data = load_digits(lab.settings)
    val = facenet_knn.validation_loader(data.test, lab.settings, seed=lab.seed)
    for recipe in recipes:
        _, history = facenet_knn.train_embedding(
            recipe,
            data.train,
            val,
            lab.settings,
            device=lab.device,
            seed=lab.seed,
            runs_dir=lab.run_dir(recipe),
        )
        print(recipe, history.to_string(index=False), sep="\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(facenet_knn.RECIPES))
