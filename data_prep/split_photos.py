"""Split a folder of class sub-folders (e.g. flower_photos) into train and val, as the
handout's split.py does, and write class_idx.json.

Usage: python data_prep/split_photos.py SOURCE [--out OUT] [--val-fraction 0.2] [--seed 0]
  SOURCE          a folder of class sub-folders: SOURCE/<class>/<image>
  --out OUT       where to write OUT/train/<class>, OUT/val/<class> and OUT/class_idx.json
                  (default: <data>/<SOURCE's name>-split; <data> is $LABKIT_DATA, else data/)
  --val-fraction  the share of every class held out for validation (at least one image each)
  --seed          the same seed gives the same split
Files are hard-linked when the file system allows, else copied; SOURCE is never modified.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from labkit.config import data_root  # noqa: E402
from labkit.data.photos import split_class_folder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, split, print the per-class counts and where things went; 1 on a
    clear error."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="folder of class sub-folders")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else data_root() / f"{args.source.name}-split"
    try:
        split = split_class_folder(args.source, out, val_fraction=args.val_fraction, seed=args.seed)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    total = split.counts.sum().to_frame("(all classes)").T
    print(pd.concat([split.counts, total]).to_string())
    print(
        f"split of {args.source} at {out}: train {split.counts['train'].sum()}, val "
        f"{split.counts['val'].sum()} images ({args.val_fraction:.0%} of each class, seed "
        f"{args.seed}), {len(split.class_names)} classes; class index at {split.class_index}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
