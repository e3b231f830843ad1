"""Batch grading: submission forms, resume after a kill, Gradescope bundle, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from coursekit.cli import main
from coursekit.grading.batch import collect_submissions, gradescope_results
from coursekit.grading.gradescope import build_bundle
from coursekit.grading.homework import find_root, resolve_homework

from .conftest import copy_submission


def test_collect_submissions_forms_and_ids(tmp_path):
    copy_submission("correct", tmp_path, "alice")
    copy_submission("correct", tmp_path, "bob")
    with zipfile.ZipFile(tmp_path / "carol.zip", "w") as z:
        z.writestr("carol/submission.py", "def add(a, b):\n    return a + b\n")
        z.writestr("../../evil.py", "x = 1\n")
    with zipfile.ZipFile(tmp_path / "dave.zip", "w") as z:
        z.writestr("notes.txt", "nothing")
    (tmp_path / "empty").mkdir()
    work = tmp_path / "work"
    subs = collect_submissions(
        [
            tmp_path / "alice",
            tmp_path / "bob" / "submission.py",
            tmp_path / "carol.zip",
            tmp_path / "dave.zip",
            tmp_path / "empty",
        ],
        work,
    )
    assert [s.student for s in subs] == ["alice", "bob", "carol", "dave", "empty"]
    assert subs[2].file.read_text().startswith("def add")
    assert not (tmp_path / "evil.py").exists() and not (work.parent / "evil.py").exists()
    assert subs[3].file is None and "no submission.py" in subs[3].problem
    assert subs[4].file is None
    with pytest.raises(ValueError, match="two submissions for student 'alice'"):
        collect_submissions([tmp_path / "alice", tmp_path / "alice" / "submission.py"], work)
    (tmp_path / "notes.txt").write_text("not a submission")
    with pytest.raises(ValueError, match="expected a folder, a submission.py or a .zip"):
        collect_submissions([tmp_path / "notes.txt"], work)


def test_homework_resolution_and_root_errors(course, tmp_path):
    assert resolve_homework("hw0", course).slug == "hw0_fake"
    assert resolve_homework("hw0_fake", course).id == "hw0"
    with pytest.raises(ValueError, match="no homework called 'hw7'.*found: hw0_fake"):
        resolve_homework("hw7", course)
    with pytest.raises(ValueError, match="--root"):
        find_root(tmp_path)
    assert find_root(start=course / "solutions" / "hw0_fake") == course


def test_gradescope_results_schema():
    result = {
        "score": 1.0,
        "output": "hi",
        "checks": [
            {
                "id": "a",
                "title": "t",
                "score": 1.0,
                "max_score": 1.0,
                "status": "pass",
                "message": "",
                "visibility": "visible",
            },
            {
                "id": "b",
                "title": "u",
                "score": 0.0,
                "max_score": 2.0,
                "status": "timeout",
                "message": "too slow",
                "visibility": "after_published",
            },
        ],
    }
    out = gradescope_results(result)
    assert out["score"] == 1.0 and len(out["tests"]) == 2
    assert out["tests"][1] == {
        "name": "b: u",
        "number": "b",
        "score": 0.0,
        "max_score": 2.0,
        "status": "failed",
        "visibility": "after_published",
        "output": "timed out: too slow",
    }


def _cli(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "coursekit.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_killed_grade_run_resumes_without_losing_anyone(course, tmp_path):
    subs = tmp_path / "subs"
    names = ["s1", "s2", "s3", "s4"]
    for name in names:
        copy_submission("correct", subs, name)
    copy_submission("loop_forever", subs, "s2")
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "coursekit.cli",
        "grade",
        "hw0",
        *[str(subs / n) for n in names],
        "--out",
        str(out),
        "--root",
        str(course),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "results").glob("*.json")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert 1 <= len(done_before) < len(names)
    assert not list((out / "results").glob(".*.tmp"))  # no half-written results
    for name in done_before:
        json.loads((out / "results" / f"{name}.json").read_text())
    rerun = _cli(
        "grade",
        "hw0",
        *[str(subs / n) for n in names],
        "--out",
        str(out),
        "--root",
        str(course),
        "--no-progress",
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"graded {len(names) - len(done_before)}, skipped {len(done_before)}" in rerun.stdout
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert gradebook[0] == "student,0a,0b,total,max"
    assert sorted(line.split(",")[0] for line in gradebook[1:]) == names
    assert "s2,0,2,2,5" in gradebook and "s1,3,2,5,5" in gradebook
    assert "students: 4" in rerun.stdout and "0a-basic" in rerun.stdout


@pytest.mark.slow
def test_gradescope_bundle_runs_and_always_writes_results(course, tmp_path):
    hw = resolve_homework("hw0", course)
    bundle = build_bundle(hw, tmp_path / "hw0_autograder.zip")
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        z.extractall(source)
    assert "setup.sh" in names and "run_autograder" in names
    assert "solutions/hw0_fake/checks/hidden.py" in names
    assert "coursekit/grading/worker.py" in names
    setup = (source / "setup.sh").read_text()
    assert "download.pytorch.org/whl/cpu" in setup and "pip install -q --no-deps ." in setup
    assert "requirements.lock" in names  # what setup.sh pins: test_gradescope_setup.py
    os.chmod(source / "run_autograder", 0o755)

    def run(submission_dir, python=sys.executable):
        results = tmp_path / "results" / "results.json"
        env = dict(
            os.environ,
            COURSEKIT_AG_SOURCE=str(source),
            COURSEKIT_AG_SUBMISSION=str(submission_dir),
            COURSEKIT_AG_RESULTS=str(results),
            COURSEKIT_AG_PYTHON=python,
        )
        done = subprocess.run(
            [str(source / "run_autograder")], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0
        return json.loads(results.read_text())

    good = run(copy_submission("loop_forever", tmp_path / "upload"))
    assert good["score"] == 2.0 and len(good["tests"]) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run(empty)
    assert nothing["score"] == 0 and "No submission.py" in nothing["output"]
    crashed = run(copy_submission("correct", tmp_path / "u2"), python="/bin/false")
    assert crashed["score"] == 0 and "crashed" in crashed["output"]


def test_cli_errors_are_clean(course, capsys):
    (course / "x.txt").write_text("not a submission")
    code = main(["grade", "hw0", str(course / "x.txt"), "--out", "o", "--root", str(course)])
    err = capsys.readouterr().err
    assert code == 2 and "coursekit grade: error: SUBMISSION: expected a folder" in err
    code = main(["grade", "hw0", str(course), "--out", "o", "--jobs", "0", "--root", str(course)])
    assert code == 2 and "--jobs: expected an int >= 1, got 0" in capsys.readouterr().err
    code = main(["gradescope", "hw0", "--out", "bundle.tar", "--root", str(course)])
    assert code == 2 and "ending in .zip" in capsys.readouterr().err
    code = main(["check", "hw0", "--root", str(course / "nope")])
    assert code == 2 and "--root: expected an existing folder" in capsys.readouterr().err


@pytest.mark.slow
def test_student_check_command_without_solutions(course, tmp_path):
    dist = tmp_path / "dist"
    (course / "course.py").write_text("print('open the course')\n")
    (course / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert main(["release", "--root", str(course), "--student-dist", str(dist)]) == 0
    assert not (dist / "solutions").exists()
    mine = copy_submission("nan_and_shapes", tmp_path / "me")
    done = _cli("check", "hw0", "--path", str(mine / "submission.py"), cwd=dist)
    assert done.returncode == 1
    assert "hw0: 0 / 3 points" in done.stdout
    assert "Task 0a add two tensors: 0 / 2" in done.stdout
    assert "[FAIL] 0a-basic (add two vectors): 0/2" in done.stdout
    assert "contains NaN" in done.stdout and "expected shape (2, 3), got (6, 1)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    skeleton = _cli("check", "hw0", "--task", "0b", cwd=dist)
    assert "NotImplementedError: write this function" in skeleton.stdout
    assert "0a-basic" not in skeleton.stdout
    full = _cli(
        "check", "hw0", "--path", str(copy_submission("correct", tmp_path / "ok")), cwd=dist
    )
    assert full.returncode == 0 and "hw0: 3 / 3 points" in full.stdout


def test_gradebook_describes_every_up_to_date_result(course, tmp_path, capsys):
    names = ["alice", "bob", "carol", "dave"]
    for name in names:  # empty folders: graded as "no submission.py", without a worker
        (tmp_path / "subs" / name).mkdir(parents=True)
    out = tmp_path / "grades"
    opts = ["--out", str(out), "--root", str(course), "--no-progress"]

    def grade(*students):
        assert main(["grade", "hw0", *[str(tmp_path / "subs" / s) for s in students], *opts]) == 0
        stdout = capsys.readouterr().out
        rows = (out / "gradebook.csv").read_text().splitlines()[1:]
        graded = sorted(p.name for p in (out / "gradescope").iterdir())
        return stdout, [row.split(",")[0] for row in rows], graded

    grade(*names)
    stdout, rows, graded = grade("alice")
    assert rows == names and graded == names
    assert "graded 0, skipped 1" in stdout and "students: 4" in stdout
    assert "gradebook: 4 students (3 from earlier runs)" in stdout
    public = course / "solutions" / "hw0_fake" / "checks" / "public.py"
    public.write_text(public.read_text() + "\n# the checks changed\n")
    stdout, rows, graded = grade("bob")
    assert rows == ["bob"] and graded == ["bob"] and "students: 1" in stdout
    assert (
        "left out: 3 results graded with other checks, reference, grading code or "
        "--public-only (alice, carol, dave); grade them again" in stdout
    )
    assert (out / "results" / "alice.json").is_file()  # kept on disk, just not counted


def test_missing_submission_path_is_reported_as_missing(course, tmp_path, capsys):
    nobody = tmp_path / "nobody"
    code = main(["grade", "hw0", str(nobody), "--out", str(tmp_path / "o"), "--root", str(course)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"SUBMISSION: expected an existing path, got {nobody} (does not exist)" in err
