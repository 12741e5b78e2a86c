"""labkit: release student notebooks, run the labs headless, grade submissions.

Run it from the checkout (it finds solutions/ and notebooks/ there), or pass --solutions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from labkit.config import PROFILE_NAMES, profile_name, shown_path
from labkit.grading.authoring.kit import KitError, build_kit, check_kit
from labkit.grading.authoring.release import check_release, release_all
from labkit.grading.scheduler.sandbox import MODES as SANDBOX_MODES
from labkit.labs.session import REHEARSAL_LINE, SMOKE_LINE


def _repo_path(name: str) -> Path:
    """A folder of the checkout (solutions/, notebooks/, build/) seen from the current folder."""
    return Path.cwd() / name


def _check_kit(args: argparse.Namespace) -> list[str]:
    """The problems of the kit in --kit, or of a kit built from the solutions into a scratch
    folder (its files then shown by their paths inside the kit)."""
    if args.kit is not None:
        print(f"checking the kit in {args.kit}")
        return check_kit(args.kit, args.solutions)
    print("checking a student kit built into a scratch folder (paths inside the kit)")
    with tempfile.TemporaryDirectory(prefix="labkit-kit-") as scratch:
        kit = build_kit(Path(scratch) / "kit", args.solutions, check=False)
        return check_kit(kit, args.solutions, shown="")


def cmd_release(args: argparse.Namespace) -> int:
    """Release (or with --check, verify) the student notebooks; with --kit, the student kit."""
    try:
        if args.check:
            problems = check_release(args.solutions, args.notebooks)
            problems += _check_kit(args)
            for problem in problems:
                print(problem)
            print("release check:", "ok" if not problems else f"{len(problems)} problem(s)")
            return 1 if problems else 0
        if args.kit is not None:
            kit = build_kit(args.kit, args.solutions)
            notebooks = sorted(p.name for p in (kit / "notebooks").iterdir())
            print(f"wrote the student kit to {kit} ({', '.join(notebooks)}); publish that folder")
            return 0
    except (KitError, OSError) as error:
        print(f"labkit release: {error}")
        return 2
    for path in release_all(args.solutions, args.notebooks):
        print(f"released {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Execute the chosen labs' solutions notebooks headless and print their headline results."""
    from labkit.runner import run_labs, store_outputs, summary_table, write_summary

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
    if args.store and (profile != "smoke" or args.rehearse):
        print(
            f"--store keeps the smoke profile's outputs in solutions/ (what nbval compares); "
            f"run it with --profile smoke, not {profile}"
        )
        return 2
    if args.rehearse:
        print(REHEARSAL_LINE.format(profile=profile))
    elif profile == "smoke":
        print(SMOKE_LINE)

    def after(run, notebook: Path) -> None:
        if args.store and run.status == "ok" and run.executed is not None:
            store_outputs(run.executed, notebook)
            print(f"  stored its outputs in {shown_path(notebook)}", flush=True)
        print(
            f"  {run.lab}: {run.status} in {run.seconds:.0f} s ({profile} profile) -> "
            f"{shown_path(run.executed)}",
            flush=True,
        )

    runs = run_labs(
        notebooks, args.out, profile, after=after, stream=sys.stdout, rehearse=args.rehearse
    )
    table = summary_table(runs, profile)
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(table.to_string(index=False))
    md, _ = write_summary(table, args.out)
    print(f"summary: {shown_path(md)} and summary.csv beside it")
    return 0 if all(r.status == "ok" for r in runs) else 1


def _grade_paths_problem(args: argparse.Namespace) -> str:
    """Why `labkit grade`'s paths cannot work ("" when they can), before anything runs."""
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out} is a file: pass a folder for the gradebook and feedback"
    if args.submissions.is_dir() and args.out.resolve().is_relative_to(args.submissions.resolve()):
        return (
            f"--out {args.out} is inside the submissions folder, where it would be graded as "
            "a student next time: pass a folder outside it"
        )
    return ""


def _grade_fresh(args: argparse.Namespace):
    """Grade the submissions folder, printing what isolates the kernels and each result."""
    from labkit.grading.scheduler.run import grade_folder, read_solutions
    from labkit.grading.scheduler.sandbox import find_sandbox

    read_solutions(args.solutions)  # a wrong path stops here, before anything is printed
    sandbox = find_sandbox(args.sandbox)
    isolation = (
        f"in the {sandbox.name} sandbox"
        if sandbox.active
        else f"WITHOUT a sandbox ({sandbox.reason}): student code can read this "
        "machine's files, see docs/GRADING.md"
    )
    print(f"grading {args.submissions} with {args.workers} worker(s) {isolation}")
    per_cell = (
        "each question's time budget from a timed run of the solutions notebook"
        if args.cell_timeout is None
        else f"{args.cell_timeout:g} s per cell"
    )
    print(
        f"limits: {per_cell}, {args.timeout:g} s per submission, "
        f"{args.memory_limit:g} GiB per kernel",
        flush=True,
    )
    return grade_folder(
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
            f"  {r.student}: {r.total:g} / {r.max_points:g} ({r.status}, {r.seconds:.0f} s)",
            flush=True,
        ),
    )


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a folder of submissions (or, with --manual and an earlier run in --out, only merge)."""
    from labkit.grading.authoring.protocol import parse_solutions
    from labkit.grading.reports.gradebook import GradingRun
    from labkit.grading.scheduler.sandbox import SandboxError

    problem = _grade_paths_problem(args)
    if problem:
        print(f"labkit grade: {problem}")
        return 2
    earlier = args.out / "results.json"
    merging = bool(args.manual) and earlier.is_file()
    try:
        if merging:
            run = GradingRun.load(args.out)
            if run.spec.lab != parse_solutions(args.solutions).lab:
                print(f"{earlier} grades another lab than {args.solutions}; use another --out")
                return 2
            print(f"merging {args.manual} into the run in {args.out} (nothing is run again)")
        else:
            run = _grade_fresh(args)
        if args.manual:
            run.merge_manual(args.manual)
    except (ValueError, OSError, SandboxError) as error:
        print(f"labkit grade: {error}")
        return 2
    run.write(args.out)
    book = run.gradebook.drop(columns=["file", "seconds"])
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(book.to_string(index=False))
    if run.budgets and not merging:
        budgets = run.budgets.items()
        shown = ", ".join(f"{q or 'after the last answer'} {s:.0f} s" for q, s in budgets)
        print(f"time budgets: {shown}")
    for warning in run.warnings:
        print(f"warning: {warning}")
    done = (
        f"hand marks merged for {len(book)} submission(s)"
        if merging
        else f"{len(book)} submission(s) in {run.seconds:.0f} s"
    )
    print(f"{done}; gradebook, feedback/ and answers in {args.out}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download, check and lay out real data sets and ImageNet weights; with no name, list them."""
    from labkit.data.fetch import SOURCES, FetchError, fetch, sources_table

    if not args.names:
        print(sources_table(args.data))
        return 0
    unknown = [name for name in args.names if name not in SOURCES]
    if unknown or (args.url and len(args.names) > 1):
        known = ", ".join(SOURCES)
        problem = f"no {', '.join(unknown)} (known: {known})" if unknown else "--url: one name"
        print(f"labkit fetch: {problem}")
        return 2
    status = 0
    for name in args.names:
        try:
            print(fetch(name, root=args.data, url=args.url, progress=not args.quiet))
        except FetchError as error:
            print(f"labkit fetch {name}: {error}")
            status = 1
    return status


def _add_out(parser: argparse.ArgumentParser, folder: str, what: str) -> None:
    """The `--out` option: a folder for `what`, build/`folder` by default."""
    parser.add_argument(
        "--out",
        type=Path,
        default=_repo_path("build") / folder,
        help=f"folder for {what} (default: build/{folder})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `labkit` command."""
    parser = argparse.ArgumentParser(
        prog="labkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    release = sub.add_parser(
        "release", help="make notebooks/ from solutions/, or with --kit the student kit"
    )
    release.add_argument(
        "--check",
        action="store_true",
        help="only verify notebooks/ and a student kit (the one in --kit, else one built into a "
        "scratch folder): exit 1 on a difference or a line of an answer or hidden test",
    )
    release.add_argument(
        "--kit",
        type=Path,
        metavar="DIR",
        help="write the student kit (released notebooks, package, data_prep, README and Makefile "
        "for students; no solutions, results, tests or hidden tests) into the new folder DIR",
    )
    release.set_defaults(func=cmd_release)

    run = sub.add_parser("run", help="execute every lab headless and print its headline results")
    run.add_argument("labs", nargs="*", help="two-digit lab numbers to run (e.g. 02); default: all")
    run.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="default: $LABKIT_PROFILE, else full with a CUDA GPU and cpu without",
    )
    _add_out(run, "run", "the executed notebooks")
    run.add_argument(
        "--store",
        action="store_true",
        help="smoke profile only: write each notebook's outputs back into solutions/ (widget "
        "outputs and timestamps left out), when it ran without error",
    )
    run.add_argument(
        "--rehearse",
        action="store_true",
        help="the profile's models and image sizes with a couple of steps and images per lab "
        "(LABKIT_REHEARSE=1 in each kernel): every cell runs, the numbers mean nothing, runs "
        "go under runs/<lab>/<profile>-rehearsal",
    )
    run.set_defaults(func=cmd_run)

    grade = sub.add_parser("grade", help="grade a folder of submissions into a gradebook")
    grade.add_argument("solutions", type=Path, help="the lab's solutions notebook")
    grade.add_argument("submissions", type=Path, help="one notebook or one folder per student")
    _add_out(grade, "grade", "the gradebook, feedback and answers")
    grade.add_argument(
        "--workers", type=int, default=2, help="submissions graded at once (default: 2)"
    )
    grade.add_argument(
        "--cell-timeout",
        type=float,
        help="a fixed time-out in seconds per cell (default: each question's cells get 10x the "
        "time the solutions notebook's took, plus a minute; the solutions run first to time it)",
    )
    grade.add_argument(
        "--sandbox",
        choices=SANDBOX_MODES,
        default="auto",
        help="isolate student code with bubblewrap: auto (where it works), bwrap (required), none",
    )
    grade.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds per submission (default: 3600)"
    )
    grade.add_argument(
        "--memory-limit", type=float, default=6.0, help="GiB per kernel (default: 6)"
    )
    grade.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="smoke",
        help="profile the submissions run in (default: smoke, seconds per submission)",
    )
    grade.add_argument("--run-all", action="store_true", help="run cells after the last answer too")
    grade.add_argument("--manual", type=Path, help="hand marks (CSV) to merge into the gradebook")
    grade.set_defaults(func=cmd_grade)

    fetch = sub.add_parser("fetch", help="download real data sets and ImageNet weights")
    fetch.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="vgg16-weights, vgg19-weights, cub, flowers, mnist; none: list them and what is here",
    )
    fetch.add_argument(
        "--url", help="a mirror: the file's URL, or a folder URL holding the files by name"
    )
    fetch.add_argument("--data", type=Path, help="data folder (default: $LABKIT_DATA, else data/)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=cmd_fetch)

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
