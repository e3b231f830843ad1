"""coursekit.grading.helper_swap: correct helpers for one call, then the student's again."""

from __future__ import annotations

import types

import pytest

from coursekit.grading.helper_swap import swap_helpers


def _student():
    module = types.ModuleType("submission")
    exec("def helper(x):\n    return x + 1\n\n"  # noqa: S102 - a stand-in submission
         "def task(x):\n    return 2 * helper(x)\n", module.__dict__)
    return module


def test_the_task_uses_the_given_helper_inside_the_block_only():
    student = _student()
    assert student.task(1) == 4  # the student's helper (x + 1)
    with swap_helpers(student, "def helper(x):\n    return x * 10\n", ("helper", "absent")):
        assert student.task(1) == 20  # the graded helper
        leaked = student.helper
    assert student.task(1) == 4  # put back
    with pytest.raises(RuntimeError, match="helper used outside the check"):
        leaked(1)  # a reference kept by the student's code is dead after the block
    assert not hasattr(student, "absent")


def test_no_source_changes_nothing_and_a_missing_helper_is_removed_again():
    student = _student()
    with swap_helpers(student, None, ("helper",)):
        assert student.task(1) == 4
    del student.helper  # a submission that never defined the helper
    with swap_helpers(student, "def helper(x):\n    return x\n", ("helper",)):
        assert student.task(3) == 6
    assert not hasattr(student, "helper")
