"""labkit: release student notebooks, run the labs headless, grade submissions.

Run it from the checkout (it finds solutions/ and notebooks/ there), or pass --solutions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from labkit.config import PROFILE_NAMES, profile_name, shown_path
from labkit.grading.release import check_release, release_all
from labkit.session import SMOKE_LINE


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
        asked = f"lab {', '.join(args.labs)}" if args.labs else "any lab"
        print(
            f"no notebook of {asked} in {args.solutions}: name labs by two digits (02) and run "
            "labkit from the checkout, or pass --solutions"
        )
        return 1
    profile = profile_name(args.profile)
    if profile == "smoke":
        print(SMOKE_LINE)
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} in the {profile} profile ...", flush=True)
        runs.append(run_notebook(notebook, args.out, profile=profile))
        run = runs[-1]
        print(
            f"  {run.lab}: {run.status} in {run.seconds:.0f} s ({profile} profile) -> "
            f"{shown_path(run.executed)}",
            flush=True,
        )
    rows = [
        {
            "lab": r.lab,
            "profile": profile,
            "status": r.status,
            "seconds": round(r.seconds, 1),
            "result": k,
            "value": v,
        }
        for r in runs
        for k, v in (r.results.items() or [("-", "-")])
        if k != "profile"
    ]
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0 if all(r.status == "ok" for r in runs) else 1


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a folder of submissions (or, with --manual and an earlier run in --out, only merge)."""
    from labkit.grading.grade import grade_folder
    from labkit.grading.gradebook import GradingRun
    from labkit.grading.protocol import parse_solutions
    from labkit.grading.sandbox import SandboxError, find_sandbox

    earlier = args.out / "results.json"
    try:
        if args.manual and earlier.is_file():
            run = GradingRun.load(args.out)
            if run.spec.lab != parse_solutions(args.solutions).lab:
                print(f"{earlier} grades another lab than {args.solutions}; use another --out")
                return 2
            print(f"merging {args.manual} into the run in {args.out} (nothing is run again)")
        else:
            sandbox = find_sandbox(args.sandbox)
            isolation = (
                f"in the {sandbox.name} sandbox"
                if sandbox.active
                else f"WITHOUT a sandbox ({sandbox.reason}): student code can read this "
                "machine's files, see docs/GRADING.md"
            )
            print(f"grading {args.submissions} with {args.workers} worker(s) {isolation}")
            if args.cell_timeout is None:
                print("timing the solutions notebook for each question's time budget ...")
            run = grade_folder(
                args.solutions,
                args.submissions,
                None,
                workers=args.workers,
                cell_timeout=args.cell_timeout,
                total_timeout=args.timeout,
                memory_limit=args.memory_limit,
                profile=args.profile,
                run_all=args.run_all,
                sandbox=args.sandbox,
                on_result=lambda r: print(
                    f"  {r.student}: {r.total:g} / {r.max_points:g} ({r.status}, "
                    f"{r.seconds:.0f} s)",
                    flush=True,
                ),
            )
        if args.manual:
            run.merge_manual(args.manual)
    except (ValueError, FileNotFoundError, NotADirectoryError, SandboxError) as error:
        print(f"labkit grade: {error}")
        return 2
    run.write(args.out)
    book = run.gradebook.drop(columns=["file", "seconds"])
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(book.to_string(index=False))
    if run.budgets:
        shown = ", ".join(
            f"{q or 'after the last answer'} {s:.0f} s" for q, s in run.budgets.items()
        )
        print(f"time budgets: {shown}")
    for warning in run.warnings:
        print(f"warning: {warning}")
    print(
        f"{len(book)} submission(s) in {run.seconds:.0f} s; gradebook, feedback/ and answers in "
        f"{args.out}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `labkit` command."""
    parser = argparse.ArgumentParser(
        prog="labkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    release = sub.add_parser("release", help="make notebooks/ from solutions/")
    release.add_argument("--check", action="store_true", help="only verify, exit 1 on a difference")
    release.set_defaults(func=cmd_release)

    run = sub.add_parser("run", help="execute every lab headless and print its headline results")
    run.add_argument("labs", nargs="*", help="two-digit lab numbers to run (e.g. 02); default: all")
    run.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="default: $LABKIT_PROFILE, else full with a CUDA GPU and cpu without",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=_repo_path("build") / "run",
        help="folder for the executed notebooks (default: build/run)",
    )
    run.set_defaults(func=cmd_run)

    grade = sub.add_parser("grade", help="grade a folder of submissions into a gradebook")
    grade.add_argument("solutions", type=Path, help="the lab's solutions notebook")
    grade.add_argument("submissions", type=Path, help="one notebook or one folder per student")
    grade.add_argument(
        "--out",
        type=Path,
        default=_repo_path("build") / "grade",
        help="folder for the gradebook, feedback and answers (default: build/grade)",
    )
    grade.add_argument("--workers", type=int, default=2, help="submissions graded at once")
    grade.add_argument(
        "--cell-timeout",
        type=float,
        help="a fixed time-out in seconds per cell (default: each question's cells get 10x the "
        "time the solutions notebook's took, plus a minute; the solutions run first to time it)",
    )
    grade.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="isolate student code with bubblewrap: auto (where it works), bwrap (required), none",
    )
    grade.add_argument("--timeout", type=float, default=3600.0, help="seconds per submission")
    grade.add_argument("--memory-limit", type=float, default=6.0, help="GiB per kernel")
    grade.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="smoke",
        help="profile the submissions run in (default: smoke, seconds per submission)",
    )
    grade.add_argument("--run-all", action="store_true", help="run cells after the last answer too")
    grade.add_argument("--manual", type=Path, help="hand marks (CSV) to merge into the gradebook")
    grade.set_defaults(func=cmd_grade)

    for p in (release, run):
        p.add_argument(
            "--solutions",
            type=Path,
            default=_repo_path("solutions"),
            help="the solutions notebooks' folder (default: solutions/ here)",
        )
    release.add_argument("--notebooks", type=Path, default=_repo_path("notebooks"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `labkit` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
