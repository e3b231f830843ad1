"""The ``coursekit`` command.

``coursekit doctor`` reports what this machine has; the homework commands
(``release``, ``check``, ``grade``, ``gradescope``) live in
:mod:`coursekit.grading.commands` and are registered here.
"""

from __future__ import annotations

import argparse
import sys

from coursekit import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coursekit",
        description="Deep generative models course: environment check and homework tools.",
    )
    parser.add_argument("--version", action="version", version=f"coursekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="report Python/torch versions, device, data and extras")
    doctor.set_defaults(func=_run_doctor)
    try:
        from coursekit.grading import commands as grading_commands
    except ImportError:  # grading not installed in a stripped-down copy
        grading_commands = None
    if grading_commands is not None:
        grading_commands.register(sub)
    return parser


def _run_doctor(args: argparse.Namespace) -> int:
    from coursekit.doctor import run_doctor

    return run_doctor()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
