"""The contract every homework in ``solutions/hw*`` meets (a new homework gets these by existing).

* the committed ``homework/<slug>/`` is what ``coursekit release`` generates
  (``public_expected.json`` compared numerically: recorded floats may differ in
  the last bits across machines; every other file byte for byte), without the
  hidden checks;
* every task has public and hidden checks;
* the reference solution gets full marks, also on the student side (no
  ``solutions/``: public checks replay the recorded expected values);
* the released skeleton gets zero without crashing the grader (one worker).

What each homework's checks catch is tested per homework in ``tests/hwN/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from coursekit.grading import grade_submission, run_public_checks
from coursekit.grading.homework import Homework, load_checks, resolve_homework
from coursekit.grading.reference import LiveReference
from coursekit.grading.release import release
from coursekit.grading.wire import decode

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SLUGS = sorted(p.parent.name for p in (REPO / "solutions").glob("hw*/homework.json"))
IGNORED = {"__pycache__", ".ipynb_checkpoints"}


@pytest.fixture(scope="module", params=SLUGS)
def hw(request) -> Homework:
    return resolve_homework(request.param, root=REPO)


@pytest.fixture(scope="module")
def grade(hw):
    """grade(path) -> result dict of every check; checks and reference are loaded once."""
    specs = load_checks(hw, include_hidden=True)
    reference = LiveReference(hw.master_dir, hw.harness_file())

    def run(path: Path) -> dict:
        result = grade_submission(hw, path, root=REPO, specs=specs, reference=reference)
        bad = [(c["id"], c["message"]) for c in result["checks"] if c["status"] == "error"]
        assert not bad, f"checks errored (a bug in a check or a crashed worker): {bad}"
        return result

    return run


def released(hw: Homework) -> Path:
    return REPO / "homework" / hw.slug


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not IGNORED & set(p.relative_to(folder).parts)
    }


def test_committed_release_equals_a_fresh_release(hw, tmp_path):
    committed = released(hw)
    assert committed.is_dir(), f"homework/{hw.slug} is missing: run `coursekit release {hw.id}`"
    (fresh,) = release([hw.slug], root=REPO, out=tmp_path)
    a, b = tree(committed), tree(fresh)
    stale = f"homework/{hw.slug} is stale: run `coursekit release {hw.id}`"
    assert sorted(a) == sorted(b), stale
    assert "checks/hidden.py" not in a
    for name in a:
        if name.endswith("public_expected.json"):
            _assert_expected_close(json.loads(a[name]), json.loads(b[name]), name)
        else:
            assert a[name] == b[name], f"{stale} ({name} differs)"


def _assert_expected_close(a: dict, b: dict, name: str) -> None:
    """Same checks, calls and keys; values equal up to the last bits."""
    assert sorted(a["checks"]) == sorted(b["checks"]), name
    for check_id in a["checks"]:
        ea, eb = a["checks"][check_id], b["checks"][check_id]
        assert [(e["name"], e["key"]) for e in ea] == [(e["name"], e["key"]) for e in eb]
        for x, y in zip(ea, eb):
            _close(decode(x["value"]), decode(y["value"]))


def _close(x, y) -> None:
    if isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            _close(u, v)
    elif isinstance(x, dict):
        assert sorted(x) == sorted(y)
        for key in x:
            _close(x[key], y[key])
    elif isinstance(x, (np.ndarray, float, int)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    else:
        assert x == y


def test_every_task_has_public_and_hidden_checks(hw):
    specs = load_checks(hw, include_hidden=True)
    for task in hw.tasks:
        kinds = {s.hidden for s in specs if s.task == task}
        assert kinds == {False, True}, f"task {task}: public and hidden checks expected"


def test_solution_gets_full_marks(hw, grade):
    result = grade(hw.master_dir / "submission.py")
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed
    assert result["score"] == result["max_score"] > 0


def test_released_skeleton_gets_zero_without_crashing(hw, grade):
    result = grade(released(hw) / "submission.py")
    assert result["score"] == 0 and result["max_score"] > 0
    assert result["worker_starts"] == 1  # one worker served every check
    for c in result["checks"]:
        assert c["status"] == "fail", c
        assert "NotImplementedError" in c["message"], c


def test_student_side_public_checks_pass_the_solution(hw, tmp_path):
    """A student's copy (no solutions/) with a correct submission: all public checks pass."""
    copy = tmp_path / "course" / "homework" / hw.slug
    shutil.copytree(released(hw), copy, ignore=shutil.ignore_patterns(*IGNORED))
    shutil.copyfile(hw.master_dir / "submission.py", copy / "submission.py")
    result = run_public_checks(hw.id, root=copy.parents[1], verbose=False)
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed
    assert result["score"] == result["max_score"] > 0
    assert all("hidden" not in c["id"] for c in result["checks"])
    first = next(iter(hw.tasks))
    only_first = run_public_checks(hw.id, task=first, root=copy.parents[1], verbose=False)
    assert {c["task"] for c in only_first["checks"]} == {first}
