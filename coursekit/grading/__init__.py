"""Homework tooling: release, check, grade and Gradescope export.

Python API (for tests and homework notebooks)::

    from coursekit.grading import grade_submission, run_public_checks

    # instructor / tests: grade one submission against solutions/<hw>/ (public + hidden)
    result = grade_submission("hw1", "path/to/submission.py", include_hidden=True)
    result["score"], result["max_score"]          # floats
    result["checks"]    # list of {"id", "task", "title", "score", "max_score",
                        #          "status" ("pass"|"fail"|"error"|"timeout"),
                        #          "message", "duration", "visibility"}

    # student / notebook: run the public checks and print a friendly report
    run_public_checks("hw1")                 # homework/hw1_*/submission.py
    run_public_checks("hw1", task="1a")      # only task 1a
    run_public_checks("hw1", path="my.py")   # another file

Checks are written with :mod:`coursekit.grading.checks` (``@check``, ``ctx``).
Student code always runs in a separate sandbox process
(:mod:`coursekit.grading.worker`); see ``docs/grading.md``.

Imports are lazy so that the sandbox worker, which lives in this package, does
not pull in the grader.
"""

from __future__ import annotations

__all__ = [
    "CheckFailure",
    "check",
    "grade_submission",
    "run_public_checks",
    "release",
]

_LAZY = {
    "CheckFailure": "coursekit.grading.checks",
    "check": "coursekit.grading.checks",
    "grade_submission": "coursekit.grading.grader",
    "run_public_checks": "coursekit.grading.grader",
    "release": "coursekit.grading.release",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'coursekit.grading' has no attribute {name!r}")
