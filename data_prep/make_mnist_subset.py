"""Build the handout's MNIST subset (2000 train, 1000 test images) from the four MNIST IDX files.

Usage: python data_prep/make_mnist_subset.py IDX_DIR [OUT] [--train-per-class 200]
       [--test-per-class 100] [--seed 0] [--overwrite]
OUT defaults to data_root()/mnist, where labs 02 and 03 look for it (see data_prep/README.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from labkit.config import data_root  # noqa: E402
from labkit.data.mnist import make_mnist_subset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the subset, print where it went; 1 on a clear error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("idx_dir", type=Path, help="folder with the four MNIST IDX files")
    parser.add_argument("out", type=Path, nargs="?", help="output folder (default: data/mnist)")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-labkit OUT")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else data_root() / "mnist"
    try:
        root = make_mnist_subset(
            args.idx_dir,
            out,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"MNIST subset at {root}: train {args.train_per_class}/class, "
        f"test {args.test_per_class}/class, seed {args.seed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
