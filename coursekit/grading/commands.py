"""Sub-commands of ``coursekit`` for homework (filled in by the grading pipeline)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add the homework sub-commands to the ``coursekit`` parser."""
