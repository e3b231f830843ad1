"""Sub-commands of ``coursekit`` for homework: ``release``, ``check``, ``grade``, ``gradescope``.

Every command finds the course repository from the current folder upwards
(the first folder with ``solutions/`` or ``homework/``), or takes ``--root``.
Bad input prints ``coursekit <command>: error: <what was expected, what was
given>`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from coursekit.cli import HelpFormatter
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
        formatter_class=HelpFormatter,
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

    p = subparsers.add_parser(
        "check",
        help="run the public checks on your submission (students)",
        description=(
            "Run the public checks of a homework on a submission.py (default: "
            "homework/<slug>/submission.py of the course folder found from here) and print the "
            "points per task and, for every failed check, what was expected and what the code "
            "returned. Works without solutions/. Exit status 0 when every check passes, 1 "
            "otherwise. Your grade also counts hidden checks."
        ),
        epilog=(
            "examples:\n"
            "  coursekit check hw1\n"
            "  coursekit check hw1 --task 1c\n"
            "  coursekit check hw2 --path ~/attempt/submission.py"
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument("--task", default=None, help="only this task, e.g. 1a (default: every task)")
    p.add_argument(
        "--path",
        default=None,
        help="submission.py to check (default: homework/<slug>/submission.py)",
    )
    _root_option(p)
    p.set_defaults(func=_guard(_check))

    p = subparsers.add_parser(
        "grade",
        help="grade submissions (instructors)",
        description=(
            "Grade submissions with the public and hidden checks, each in its own sandboxed "
            "process, and write DIR/results/<student>.json, DIR/gradebook.csv and "
            "DIR/gradescope/<student>/results.json. The student name is the folder's name for "
            "a folder, the parent folder's name for a submission.py, and the file name "
            "without .zip for a zip. Re-runs skip students whose result is up to date. The "
            "gradebook and the summary cover every up-to-date result in DIR (graded with the "
            "current checks, reference, grading code and --public-only choice), also of "
            "students not named in this run; other results are named and left out."
        ),
        epilog=(
            "examples:\n"
            "  coursekit grade hw1 submissions/* --out grades --jobs 2\n"
            "  coursekit grade hw1 uploads/alice.zip --out grades   # adds alice, keeps the rest"
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="folders (holding submission.py), submission.py files or .zip files",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="submissions graded in parallel (default: 1; keep it <= the number of cores)",
    )
    p.add_argument("--public-only", action="store_true", help="skip the hidden checks")
    p.add_argument("--force", action="store_true", help="re-grade up-to-date results too")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="grade even where student code cannot be confined to a file-system allow-list "
        "(no Landlock: macOS, Windows, old or restricted Linux kernels); submissions could then "
        "read other copies of the solutions and, as an ordinary user, change your files",
    )
    _root_option(p)
    p.set_defaults(func=_guard(_grade))

    p = subparsers.add_parser(
        "gradescope",
        help="build a Gradescope autograder zip (instructors)",
        description=(
            "Build the autograder zip to upload to Gradescope for a homework: setup.sh "
            "(an isolated venv with CPU torch and the packages pinned in requirements.lock, "
            "then the bundled coursekit), run_autograder (grades the uploaded submission.py "
            "with the same sandboxed grader and always writes results.json), coursekit/ "
            "and solutions/<slug>/ with the hidden checks. Where Gradescope's kernel "
            "offers no Landlock, the grader refuses to run (every upload scores 0 with "
            "that message) unless the bundle is built with --unsafe-no-isolation."
        ),
        epilog="examples:\n  coursekit gradescope hw1 --out hw1_autograder.zip",
        formatter_class=HelpFormatter,
    )
    p.add_argument("homework", metavar="HW", help="e.g. hw1")
    p.add_argument("--out", required=True, metavar="ZIP", help="e.g. hw1_autograder.zip")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="let run_autograder grade even where student code cannot be confined "
                        "to a file-system allow-list (Gradescope already runs each upload in "
                        "its own container)")
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


def _homework(name: str, root: str | None):
    """Resolve ``HW``; an unknown name is reported with the ids one types (hw1, hw2)."""
    from coursekit.grading.homework import find_root, list_homeworks, read_meta, resolve_homework

    folder = find_root(root)
    ids = {}
    for slug in list_homeworks(folder):
        meta_dir = folder / "solutions" / slug
        if not (meta_dir / "homework.json").is_file():
            meta_dir = folder / "homework" / slug
        ids[str(read_meta(meta_dir)["id"])] = slug
    if not any(name in (i, s) or s.startswith(name + "_") for i, s in ids.items()):
        known = ", ".join(sorted(ids, key=lambda i: (len(i), i))) or "none (no homework here)"
        raise ValueError(f"HW: expected one of {known}, got {name!r}")
    return resolve_homework(name, folder)


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

    hw = _homework(args.homework, args.root)
    result = run_public_checks(hw, task=args.task, path=args.path, root=args.root)
    return 0 if result["score"] == result["max_score"] else 1


def _grade(args: argparse.Namespace) -> int:
    from coursekit.grading.batch import grade_batch, summary_table
    from coursekit.grading.integrity import TamperingDetected
    from coursekit.grading.isolation import IsolationUnavailable

    hw = _homework(args.homework, args.root)
    try:
        outcome = grade_batch(
            hw,
            args.submissions,
            args.out,
            jobs=args.jobs,
            include_hidden=not args.public_only,
            force=args.force,
            progress=not args.no_progress,
            unsafe_no_isolation=args.unsafe_no_isolation,
        )
    except (IsolationUnavailable, TamperingDetected) as err:
        print(f"coursekit grade: refused: {err}", file=sys.stderr)
        return 3
    report = outcome["isolation"]
    if report["isolated"]:
        print(f"isolation: {report['mechanism']}; " + "; ".join(report["protects"]))
    else:
        print(
            "WARNING: graded WITHOUT isolation (--unsafe-no-isolation): "
            + "; ".join(report["missing"]),
            file=sys.stderr,
        )
    print(
        f"graded {outcome['graded']}, skipped {outcome['skipped']} (up to date); "
        f"results in {args.out}"
    )
    print(f"gradebook: {len(outcome['results'])} students ({outcome['earlier']} from earlier runs)")
    if outcome["stale"]:
        print(
            f"left out: {len(outcome['stale'])} results graded with other checks, reference, "
            f"grading code or --public-only ({', '.join(outcome['stale'])}); grade them again"
        )
    print(summary_table(outcome["results"]))
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from coursekit.grading.gradescope import build_bundle

    out = build_bundle(_homework(args.homework, args.root), args.out,
                       unsafe_no_isolation=args.unsafe_no_isolation)
    print(f"wrote {out}: upload it as the autograder of {args.homework} on Gradescope")
    if args.unsafe_no_isolation:
        print("WARNING: this bundle grades even without a file-system allow-list "
              "(--unsafe-no-isolation)")
    return 0
