"""Isolation policy (issue 21): refusal without an allow-list, the allow-list itself,
and the trusted process's check that its grading code did not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.grading import integrity, isolation
from coursekit.grading.batch import grade_batch
from coursekit.grading.homework import resolve_homework
from coursekit.grading.sandbox import Limits, Sandbox

from .conftest import REPO, SUBMISSIONS, copy_submission


@pytest.fixture
def no_landlock(monkeypatch):
    """This machine as if its kernel had no Landlock (macOS, Windows, old Linux)."""
    monkeypatch.setattr(isolation, "landlock_abi", lambda: 0)
    monkeypatch.delenv(isolation.UNSAFE_ENV, raising=False)


def test_grading_refuses_without_isolation_and_says_how_to_override(no_landlock, course, tmp_path):
    with pytest.raises(isolation.IsolationUnavailable, match="--unsafe-no-isolation"):
        isolation.require()
    assert isolation.require(unsafe=True)["unsafe"] is True
    hw = resolve_homework("hw0", course)
    sub = copy_submission("correct", tmp_path / "subs")
    with pytest.raises(isolation.IsolationUnavailable, match="Landlock"):
        grade_batch(hw, [sub], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "results" / "correct.json").exists()  # nothing graded


def test_cli_grade_refuses_with_exit_status_3(no_landlock, course, tmp_path, capsys):
    sub = copy_submission("correct", tmp_path / "subs")
    args = ["grade", "hw0", str(sub), "--out", str(tmp_path / "out"), "--root", str(course)]
    assert main([*args, "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "coursekit grade: refused: student code cannot be isolated" in err
    assert "--unsafe-no-isolation" in err


def test_doctor_row_names_the_mechanism(no_landlock):
    isolated, detail = isolation.doctor_row()
    assert not isolated and "refuses to run without --unsafe-no-isolation" in detail


@pytest.mark.skipif(isolation.landlock_abi() < 1, reason="no Landlock on this kernel")
def test_doctor_row_on_this_machine():
    isolated, detail = isolation.doctor_row()
    assert isolated and detail.startswith(f"landlock ABI {isolation.landlock_abi()}")


def test_allow_list_leaves_out_private_folders_and_forbidden_modules(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    package = REPO / "coursekit"
    forbidden = str(package / "probability.py")
    rules = isolation.plan(str(scratch), [str(REPO / "solutions")], [forbidden])
    assert rules[str(scratch.resolve())] & isolation.FS_WRITE_FILE
    writable = [p for p, access in rules.items() if access & isolation.FS_WRITE_FILE]
    assert sorted(writable) == sorted([str(scratch.resolve()), "/dev/null"])
    solutions = str((REPO / "solutions").resolve())
    for path, access in rules.items():
        assert not path.startswith(solutions), path
        if access & isolation.FS_READ_FILE:  # a readable tree may not hold either
            assert not solutions.startswith(path + os.sep), path
            assert not forbidden.startswith(path + os.sep) and path != forbidden, path
    assert str(package / "runtime.py") in rules or str(package) in rules
    assert "/" not in rules and "/tmp" not in rules and "/home" not in rules


@pytest.mark.slow
def test_worker_that_cannot_confine_itself_refuses_to_run_student_code():
    box = Sandbox(
        SUBMISSIONS / "correct" / "submission.py",
        limits=Limits(mem_bytes=3 * 1024**3, confine=False),
        require_isolation=True,
    )
    with box, pytest.raises(isolation.IsolationUnavailable, match="could not be isolated"):
        box.start()


def test_tampered_grading_code_is_detected(tmp_path):
    package = tmp_path / "coursekit"
    (package / "grading").mkdir(parents=True)
    for name in ("grader.py", "worker.py"):
        (package / "grading" / name).write_text(f"# {name}\n")
    snap = integrity.CodeSnapshot(integrity.grading_files(package), package)
    snap.package = integrity.PACKAGE  # the loaded modules come from the real package
    snap.verify()
    with open(package / "grading" / "grader.py", "a") as handle:
        handle.write("import os  # tampered by a submission\n")
    with pytest.raises(integrity.TamperingDetected, match=r"grader\.py \(changed\)"):
        snap.verify()


def test_checks_changed_while_grading_are_detected(course):
    hw = resolve_homework("hw0", course)
    snap = integrity.CodeSnapshot.take(hw)
    snap.verify()
    hidden = Path(hw.master_dir) / "checks" / "hidden.py"
    hidden.write_text(hidden.read_text() + "\n# edited\n")
    with pytest.raises(integrity.TamperingDetected, match="hidden.py"):
        snap.verify()
