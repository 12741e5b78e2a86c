"""Check CUB-200-2011 (a folder, or CUB_200_2011.tgz unpacked first) and optionally write a
resized copy that the labs then prefer.

Usage: python data_prep/prepare_cub.py SOURCE [--out DATA] [--decode] [--short-side N]
  SOURCE        a CUB_200_2011 folder, or CUB_200_2011.tgz (unpacked into DATA)
  --out DATA    where to unpack and write copies (default: $LABKIT_DATA, else data/)
  --decode      also decode every image (a minute or two): reports truncated or odd files
  --short-side  write DATA/CUB_200_2011-short<N>: images shrunk to short side N (the HBP
                authors use 512), boxes and parts scaled to match
Every problem is reported at once; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from labkit.config import data_root  # noqa: E402
from labkit.data.cub import CUB_FOLDER, GET_CUB, read_cub_index  # noqa: E402
from labkit.data.cub_prepare import cub_problems, unpack_cub, write_resized_copy  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Unpack if needed, check, report, and write the resized copy; 1 on any problem."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="CUB_200_2011 folder or CUB_200_2011.tgz")
    parser.add_argument(
        "--out", type=Path, default=None, help="data folder (default: $LABKIT_DATA, else data/)"
    )
    parser.add_argument("--decode", action="store_true", help="decode every image as a check")
    parser.add_argument("--short-side", type=int, default=None, help="write a resized copy")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else data_root()
    try:
        if args.source.is_file():
            print(f"unpacking {args.source} into {out} ...")
            folder = unpack_cub(args.source, out)
        else:
            folder = args.source
        problems = cub_problems(folder, decode=args.decode)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if problems:
        print(f"{folder}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(GET_CUB, file=sys.stderr)
        return 1
    index = read_cub_index(folder)
    train = int(index.is_train.sum())
    print(
        f"{folder}: usable - {len(index)} images ({train} train, {len(index) - train} test), "
        f"{index.num_classes} classes, {len(index.part_names)} parts"
        + ("" if args.decode else "; add --decode to decode every image too")
    )
    if folder.name == CUB_FOLDER and folder.parent.resolve() != out.resolve():
        print(f"the labs look for it at {out / CUB_FOLDER} (set LABKIT_DATA or move it there)")
    if args.short_side is not None:
        if args.short_side < 1:
            print("error: --short-side must be at least 1", file=sys.stderr)
            return 1
        try:
            copy = write_resized_copy(
                folder, args.short_side, out / f"{CUB_FOLDER}-short{args.short_side}"
            )
        except (ValueError, FileExistsError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"resized copy at {copy}: the labs read it for resizes up to {args.short_side}px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
