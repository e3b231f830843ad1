"""The ``coursekit`` command.

``coursekit doctor`` reports what this machine has; the homework commands
(``release``, ``check``, ``grade``, ``gradescope``) live in
:mod:`coursekit.grading.commands` and are registered here.
"""

from __future__ import annotations

import argparse
import sys

from coursekit import __version__


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal; keeps an ``examples:`` epilog's lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    """The ``coursekit`` parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="coursekit",
        description="Deep generative models course: environment check and homework tools. "
        "Run 'coursekit COMMAND --help' for what a command does, its options and examples.",
        epilog=(
            "examples:\n"
            "  coursekit doctor          # is this machine ready for the course?\n"
            "  coursekit check hw1       # students: public checks of homework 1\n"
            "  coursekit release         # instructors: regenerate homework/ from solutions/"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"coursekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    doctor = sub.add_parser(
        "doctor",
        help="report Python/torch versions, device, data and extras",
        description=(
            "Report what this machine has for the course: the Python and torch versions, "
            "the device coursekit picks (CUDA, then Apple MPS, then the CPU), whether the "
            "bundled data loads, and which optional pieces are present (JupyterLab, "
            "ipywidgets, the test tools, Chromium for the browser tests, a cached MNIST). "
            "Exit status 0 when everything the course needs works (optional pieces may be "
            "missing), 1 otherwise."
        ),
        epilog="examples:\n  coursekit doctor\n  COURSEKIT_DEVICE=cpu coursekit doctor",
        formatter_class=HelpFormatter,
    )
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
    """Run ``coursekit`` with ``argv`` (default: the command line); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # no command: say which exist, like a usage error
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
