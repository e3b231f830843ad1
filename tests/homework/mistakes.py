"""Recorded mistakes: the reference solution with one small, marked edit.

Each homework's test suite (``tests/hwN/``) lists realistic mistakes as text
edits ``[(old, new), ...]`` of ``solutions/<hw>/submission.py``; generating the
wrong submissions from the reference keeps them in step when it changes.
"""

from __future__ import annotations

import difflib


def apply_mistake(reference: str, edits: list[tuple[str, str]], name: str) -> str:
    """``reference`` with every ``old`` of ``edits`` (each must occur once) replaced by ``new``."""
    text = reference
    for old, new in edits:
        assert text.count(old) == 1, f"{name}: the text to replace must occur once: {old!r}"
        text = text.replace(old, new)
    return text


def assert_one_small_marked_edit(reference: str, wrong: str, name: str, max_lines: int) -> None:
    """The mistake changes 2 to ``max_lines`` lines, one of which says ``MISTAKE``."""
    changed = [
        line
        for line in difflib.unified_diff(
            reference.splitlines(), wrong.splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert 2 <= len(changed) <= max_lines, f"{name}: expected one small edit, got {changed}"
    assert any("MISTAKE" in line for line in changed), f"{name}: mark the mistake"
