"""End-to-end on the real homework 1: the solution gets full marks, the released
skeleton gets zero without crashing the grader."""

from __future__ import annotations

import pytest

from coursekit.grading import grade_submission
from coursekit.grading.release import release

from .conftest import REPO

pytestmark = pytest.mark.slow
HW1 = REPO / "solutions" / "hw1_probability"


@pytest.fixture(scope="module")
def hw1_release(tmp_path_factory):
    if not (HW1 / "checks" / "public.py").is_file():
        pytest.skip("solutions/hw1_probability is not there yet")
    return release(["hw1"], root=REPO, out=tmp_path_factory.mktemp("rel"))[0]


def test_hw1_solution_gets_full_marks(hw1_release):
    result = grade_submission("hw1", HW1 / "submission.py", root=REPO)
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert failed == []
    assert result["score"] == result["max_score"] > 0
    assert any(c["visibility"] == "after_published" for c in result["checks"])


def test_hw1_skeleton_gets_zero_without_crashing(hw1_release):
    result = grade_submission("hw1", hw1_release / "submission.py", root=REPO)
    assert result["score"] == 0
    assert result["worker_starts"] == 1  # one worker served every check
    assert all(c["status"] == "fail" for c in result["checks"])
    assert all(
        "NotImplementedError" in c["message"] or "expected" in c["message"]
        for c in result["checks"]
    )
