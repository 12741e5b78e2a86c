"""`labkit ...`: release student notebooks, run every lab headless. Prints; the API does not."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from labkit.grading.release import check_release, release_all


def _repo_path(name: str) -> Path:
    """A folder of the checkout (solutions/, notebooks/, build/) seen from the current folder."""
    return Path.cwd() / name


def cmd_release(args: argparse.Namespace) -> int:
    """Release (or with --check, verify) the student notebooks."""
    if args.check:
        problems = check_release(args.solutions, args.notebooks)
        for problem in problems:
            print(problem)
        print("release check:", "ok" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    for path in release_all(args.solutions, args.notebooks):
        print(f"released {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Execute the chosen labs' solutions notebooks headless and print their headline results."""
    from labkit.runner import run_notebook

    notebooks = sorted(Path(args.solutions).glob("[0-9][0-9]_*.ipynb"))
    if args.labs:
        notebooks = [p for p in notebooks if p.name[:2] in args.labs]
    if not notebooks:
        print(f"no lab notebooks match {args.labs or 'any lab'} in {args.solutions}")
        return 1
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} ...", flush=True)
        runs.append(run_notebook(notebook, args.out, profile=args.profile))
        print(f"  {runs[-1].status} in {runs[-1].seconds:.0f} s -> {runs[-1].executed}", flush=True)
    rows = [
        {"lab": r.lab, "status": r.status, "seconds": round(r.seconds, 1), "result": k, "value": v}
        for r in runs
        for k, v in (r.results.items() or [("-", "-")])
    ]
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0 if all(r.status == "ok" for r in runs) else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `labkit` command."""
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    release = sub.add_parser("release", help="make notebooks/ from solutions/")
    release.add_argument("--check", action="store_true", help="only verify, exit 1 on a difference")
    release.set_defaults(func=cmd_release)

    run = sub.add_parser("run", help="execute every lab headless and print its headline results")
    run.add_argument("labs", nargs="*", help="lab numbers to run (e.g. 02); default: all")
    run.add_argument(
        "--profile", choices=["smoke", "full"], help="default: $LABKIT_PROFILE or auto"
    )
    run.add_argument("--out", type=Path, default=_repo_path("build") / "run")
    run.set_defaults(func=cmd_run)

    for p in (release, run):
        p.add_argument("--solutions", type=Path, default=_repo_path("solutions"))
    release.add_argument("--notebooks", type=Path, default=_repo_path("notebooks"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `labkit` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
