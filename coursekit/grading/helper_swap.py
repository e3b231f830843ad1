"""Judging one task at a time: run a student's function with correct helpers.

A homework task may call the student's own helper functions (hw2's bounds call
``log_normal``; hw1's ``em_step`` may call ``gaussian_log_density``). To make a
mistake in a helper cost points once, in the helper's own task, the hidden
checks pass the source text of correct helpers (``GRADED_HELPERS``, never
released) and the homework's harness runs the task inside
:func:`swap_helpers`, which puts them in place of the student's for the
duration of the call only. Runs inside the grading sandbox.
"""

from __future__ import annotations

import contextlib
import functools
from types import ModuleType

_MISSING = object()


@contextlib.contextmanager
def swap_helpers(module: ModuleType, source: str | None, names: tuple[str, ...],
                 context: dict | None = None):
    """Within the block, the functions ``names`` of ``module`` are the ones the Python
    text ``source`` defines (names it does not define stay as they are; nothing
    changes when ``source`` is None). ``context``: globals the text may use without
    defining them (e.g. a harness's way to reach a function it controls). The
    replacements refuse to run once the block is left, and the module's own
    functions are put back."""
    if source is None:
        yield
        return
    namespace = {"__name__": "graded_helpers", **(context or {})}
    exec(compile(str(source), "<graded helpers>", "exec"), namespace)  # noqa: S102
    active = [True]

    def guarded(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if not active[0]:
                raise RuntimeError("helper used outside the check that provided it")
            return func(*args, **kwargs)

        return wrapper

    provided = {n: guarded(namespace[n]) for n in names if n in namespace}
    saved = {n: module.__dict__.get(n, _MISSING) for n in provided}
    module.__dict__.update(provided)
    try:
        yield
    finally:
        active[0] = False
        for n, value in saved.items():
            if value is _MISSING:
                module.__dict__.pop(n, None)
            else:
                module.__dict__[n] = value
