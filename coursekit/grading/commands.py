"""Sub-commands of ``coursekit`` for homework: ``release``, ``check``, ``grade``, ``gradescope``.

Every command finds the course repository from the current folder upwards
(the first folder with ``solutions/`` or ``homework/``), or takes ``--root``.
Bad input prints ``coursekit <command>: error: <what was expected, what was
given>`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from coursekit.grading.release import MANIFEST


def _root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        default=None,
        help="course repository (default: found from the current folder upwards)",
    )


def register(subparsers) -> None:
    """Add the homework sub-commands to the ``coursekit`` parser."""
    p = subparsers.add_parser(
        "release",
        help="regenerate homework/ from solutions/ (instructors)",
        description=(
            "Regenerate the student copy homework/<slug>/ of each homework from its master "
            "copy solutions/<slug>/: solution regions become NotImplementedError, hidden "
            "checks are left out, public expected values are recorded. This overwrites "
            "homework/<slug>/ (every file in it). It refuses, writing nothing, when a file "
            "there changed since the last release (listed in homework/<slug>/"
            f"{MANIFEST}) or was added, and names those files; --force overwrites them."
        ),
        epilog=(
            "examples:\n"
            "  coursekit release                           # every homework\n"
            "  coursekit release hw1                       # only homework/hw1_*\n"
            "  coursekit release --student-dist /tmp/dist  # and what students receive"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("homework", nargs="*", metavar="HW", help="e.g. hw1 (default: all)")
    p.add_argument(
        "--student-dist",
        metavar="DIR",
        default=None,
        help="also write exactly what students receive into DIR (a new or empty folder): "
        "course.py, pyproject.toml, LICENSE, a student README, lectures/, homework/, coursekit/",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite released files even if they changed since the last release",
    )
    _root_option(p)
    p.set_defaults(func=_guard(_release))

    p = subparsers.add_parser("check", help="run the public checks on your submission")
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument("--task", default=None, help="only this task, e.g. 1a")
    p.add_argument("--path", default=None, help="submission.py to check (default: the homework's)")
    _root_option(p)
    p.set_defaults(func=_guard(_check))

    p = subparsers.add_parser("grade", help="grade submissions (instructors)")
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="folders, submission.py files or .zip files",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--public-only", action="store_true", help="skip the hidden checks")
    p.add_argument("--force", action="store_true", help="re-grade up-to-date results too")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _root_option(p)
    p.set_defaults(func=_guard(_grade))

    p = subparsers.add_parser("gradescope", help="build a Gradescope autograder zip")
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument("--out", required=True, metavar="ZIP", help="e.g. hw1_autograder.zip")
    _root_option(p)
    p.set_defaults(func=_guard(_gradescope))


def _guard(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, TypeError) as err:
            print(f"coursekit {args.command}: error: {err}", file=sys.stderr)
            return 2

    return run


def _release(args: argparse.Namespace) -> int:
    from coursekit.grading.release import check_dist_target, release, student_dist

    if args.student_dist:  # fail before touching homework/
        check_dist_target(args.student_dist, root=args.root)
    for folder in release(args.homework, root=args.root, force=args.force):
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        print(f"released {folder.name}: {len(files)} files in {folder}")
    if args.student_dist:
        out = student_dist(args.student_dist, root=args.root)
        count = sum(1 for p in out.rglob("*") if p.is_file())
        print(f"student distribution: {count} files in {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from coursekit.grading.grader import run_public_checks

    result = run_public_checks(args.homework, task=args.task, path=args.path, root=args.root)
    return 0 if result["score"] == result["max_score"] else 1


def _grade(args: argparse.Namespace) -> int:
    from coursekit.grading.batch import grade_batch, summary_table
    from coursekit.grading.homework import resolve_homework

    hw = resolve_homework(args.homework, args.root)
    outcome = grade_batch(
        hw,
        args.submissions,
        args.out,
        jobs=args.jobs,
        include_hidden=not args.public_only,
        force=args.force,
        progress=not args.no_progress,
    )
    print(
        f"graded {outcome['graded']}, skipped {outcome['skipped']} (up to date); "
        f"results in {args.out}"
    )
    print(
        f"gradebook: {len(outcome['results'])} students ({outcome['earlier']} from earlier runs)"
    )
    if outcome["stale"]:
        print(
            f"left out: {len(outcome['stale'])} results graded with other checks, reference, "
            f"grading code or --public-only ({', '.join(outcome['stale'])}); grade them again"
        )
    print(summary_table(outcome["results"]))
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from coursekit.grading.gradescope import build_bundle
    from coursekit.grading.homework import resolve_homework

    out = build_bundle(resolve_homework(args.homework, args.root), args.out)
    print(f"wrote {out}: upload it as the autograder of {args.homework} on Gradescope")
    return 0
