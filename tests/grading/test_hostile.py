"""Hostile submissions against the fake homework: each earns what it honestly earns,
gets a clear message, and never harms the batch, other students or the grader's files.

Runs as whoever runs the tests (CI: root, so the worker also drops to a private
uid); ``test_unprivileged.py`` runs a focused set as an ordinary account. The
``escaper`` attacks world-writable files and folders in /tmp (only the
file-system allow-list protects those from the worker's uid) and the
``finder`` searches the machine for world-readable copies of the reference
planted outside the course.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from coursekit.grading.batch import grade_batch
from coursekit.grading.homework import resolve_homework
from coursekit.grading.sandbox import Limits, live_pids_of

from .conftest import SUBMISSIONS, copy_submission

pytestmark = pytest.mark.slow

SPECIAL = ("vandal", "reader", "escaper", "finder")  # graded in the second run, with targets
NAMES = sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir() and p.name not in SPECIAL)
REFERENCE = "solutions/hw0_fake/submission.py"
LIMITS = Limits(mem_bytes=3 * 1024**3, import_timeout=60)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    stray = Path(tempfile.mkdtemp(prefix="coursekit-stray-"))  # readable by everyone
    escape_file = Path(tempfile.gettempdir()) / f"coursekit-escaper-{stray.name}.py"
    try:
        yield _graded(tmp_path_factory, stray, escape_file)
    finally:
        shutil.rmtree(stray, ignore_errors=True)
        escape_file.unlink(missing_ok=True)


def _graded(tmp_path_factory, stray, escape_file):
    from .conftest import FIXTURE_COURSE, REPO
    from .unprivileged_driver import tree_digest

    base = tmp_path_factory.mktemp("hostile")
    course = base / "course"
    shutil.copytree(FIXTURE_COURSE, course)
    hw = resolve_homework("hw0", course)
    subs_dir = base / "subs"
    for name in NAMES:
        copy_submission(name, subs_dir)
    out = base / "out"
    first = grade_batch(
        hw, [subs_dir / n for n in NAMES], out, jobs=2, limits=LIMITS, progress=False
    )
    before = {p.name: p.read_bytes() for p in (out / "results").glob("*.json")}
    protected = {
        p: p.read_bytes()
        for p in [
            course / "solutions/hw0_fake/checks/hidden.py",
            course / "solutions/hw0_fake/submission.py",
        ]
    }
    targets = [str(p) for p in protected] + [
        str(out / "results" / "*.json"),
        str(out / "gradebook.csv"),
        str(out / "gradescope" / "**" / "results.json"),
        str(out / "results" / "vandal.json"),
    ]
    secrets = [
        str(course / "solutions/hw0_fake/checks/hidden.py"),
        str(course / "solutions/hw0_fake/submission.py"),
    ]
    copy_submission("vandal", subs_dir, TARGETS=targets)
    copy_submission("reader", subs_dir, SECRET_PATHS=secrets)
    # someone else's world-readable copies of the reference, a world-writable file and folder
    os.chmod(stray, 0o755)
    planted = [stray / "course" / REFERENCE, stray / "home/bob/course" / REFERENCE]
    for path in planted:
        path.parent.mkdir(parents=True)
        shutil.copyfile(FIXTURE_COURSE / REFERENCE, path)
    for folder in stray.rglob("*"):
        os.chmod(folder, 0o755 if folder.is_dir() else 0o644)
    (stray / "victim.txt").write_text("nobody may change this\n")
    os.chmod(stray / "victim.txt", 0o666)
    (stray / "dropbox").mkdir(mode=0o777)
    os.chmod(stray / "dropbox", 0o777)
    package_copy = base / "pkg"  # stands for the installed package, owned like it
    shutil.copytree(REPO / "coursekit" / "grading", package_copy,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    copy_submission("escaper", subs_dir, TARGETS=[
        *targets, str(package_copy / "*.py"), str(package_copy), str(stray / "victim.txt"),
        str(stray / "dropbox"), str(escape_file)])  # fmt: skip
    copy_submission("finder", subs_dir, GUESSES=[
        *map(str, planted), *secrets, str(FIXTURE_COURSE / REFERENCE)])  # fmt: skip
    watched = {"course": course, "package copy": package_copy, "stray": stray,
               "coursekit/grading": REPO / "coursekit" / "grading"}  # fmt: skip
    hashes = {name: tree_digest(str(path)) for name, path in watched.items()}
    second = grade_batch(
        hw,
        [subs_dir / n for n in [*NAMES, *SPECIAL]],
        out,
        jobs=1,
        limits=LIMITS,
        progress=False,
    )
    changed = {
        name: [k for k, v in tree_digest(str(path)).items() if hashes[name].get(k) != v]
        for name, path in watched.items()
    }
    results = {r["student"]: r for r in second["results"]}
    return dict(
        first=first, second=second, results=results, out=out, before=before, protected=protected,
        changed=changed, appeared=[p for p in (escape_file, stray / "dropbox/planted.py")
                                   if os.path.lexists(p)],
    )  # fmt: skip


def checks_of(result):
    return {c["id"]: c for c in result["checks"]}


def test_first_run_graded_everyone_and_second_run_skipped_them(graded):
    assert graded["first"]["graded"] == len(NAMES)
    assert graded["second"]["skipped"] == len(NAMES)
    assert graded["second"]["graded"] == len(SPECIAL)


def test_correct_submission_gets_full_marks(graded):
    result = graded["results"]["correct"]
    assert result["score"] == result["max_score"] == 5.0
    assert result["sandbox"].get("user", "").startswith(("uid 61", "unchanged"))


def test_skeleton_gets_zero_with_the_hint(graded):
    result = graded["results"]["skeleton_like"]
    assert result["score"] == 0
    message = checks_of(result)["0a-basic"]["message"]
    assert "NotImplementedError: one line: add the two tensors" in message
    assert "submission.py, line 2" in message


def test_infinite_loop_times_out_and_other_task_still_scores(graded):
    result = graded["results"]["loop_forever"]
    checks = checks_of(result)
    assert checks["0a-basic"]["status"] == "timeout"
    assert "time limit" in checks["0a-basic"]["message"]
    assert checks["0b-basic"]["status"] == "pass" and checks["0b-hidden-harness"]["score"] == 1
    assert result["score"] == 2.0


def test_memory_hog_fails_only_its_task(graded):
    result = graded["results"]["memory_hog"]
    checks = checks_of(result)
    # MemoryError at the address-space limit, or the 5 s limit while filling 3 GB
    assert checks["0a-basic"]["status"] in ("fail", "error", "timeout")
    message = checks["0a-basic"]["message"]
    assert "MemoryError" in message or "killed" in message or "time limit" in message
    assert result["score"] == 2.0


@pytest.mark.parametrize(
    "name, words",
    [
        ("exit_at_import", "exited with code 0"),
        ("sys_exit_at_import", "SystemExit: bye (submission.py, line 3"),
        ("raise_at_import", "RuntimeError"),
        ("syntax_error", "SyntaxError: expected ':' (submission.py, line 1"),
    ],
)
def test_import_failures_score_zero_with_a_clear_message(graded, name, words):
    result = graded["results"][name]
    assert result["score"] == 0
    for check in result["checks"]:
        assert check["status"] == "error"
        assert "could not be imported" in check["message"] and words in check["message"]
    assert result["worker_starts"] == 1  # not restarted for every check


def test_raise_at_import_points_at_the_students_line(graded):
    message = graded["results"]["raise_at_import"]["checks"][0]["message"]
    assert "submission.py, line 3: WEIGHTS = torch.ones(3) @ torch.ones(4)" in message


def test_monkeypatching_numpy_and_torch_changes_nothing_in_the_judge(graded):
    checks = checks_of(graded["results"]["monkeypatch"])
    assert checks["0a-basic"]["status"] == "fail"  # add is wrong; allclose=True did not help
    assert "values differ" in checks["0a-basic"]["message"]
    assert checks["0a-hidden-quokka"]["status"] == "fail"
    assert checks["0b-basic"]["status"] == "pass"


def test_eq_overriding_objects_are_rejected(graded):
    result = graded["results"]["eq_override"]
    checks = checks_of(result)
    assert result["score"] == 0
    assert "AlwaysEqual is not plain data" in checks["0a-basic"]["message"]
    assert "SneakyFloat is not plain data" in checks["0b-basic"]["message"]


def test_nan_and_wrong_shapes_get_specific_messages(graded):
    checks = checks_of(graded["results"]["nan_and_shapes"])
    assert "contains NaN" in checks["0a-basic"]["message"]
    assert "expected shape (2, 3), got (6, 1)" in checks["0b-basic"]["message"]
    # the harness only sums scale()'s output, so the reshape honestly passes there
    assert checks["0b-hidden-harness"]["status"] == "pass"


def test_printing_megabytes_is_capped(graded):
    result = graded["results"]["prints_megabytes"]
    assert result["score"] == 5.0
    assert result["output"].startswith("hello from import")
    assert len(result["output"]) < 50_000 and "more bytes of output not shown" in result["output"]


def test_fork_bomb_is_bounded_and_cleaned_up(graded):
    result = graded["results"]["fork_bomb"]
    assert result["score"] == 5.0
    user = result["sandbox"].get("user", "")
    if os.geteuid() == 0 and user.startswith("uid "):
        uid = int(user.split()[1])  # the private uid its worker ran under
        assert live_pids_of(uid) == []  # zombies are dead already and do not count


def test_vandal_changed_nothing_and_earned_its_points(graded):
    result = graded["results"]["vandal"]
    assert result["score"] == 5.0, result["checks"]  # scale() raises if any attack worked
    for path, data in graded["protected"].items():
        assert path.read_bytes() == data
    out = graded["out"]
    for name, data in graded["before"].items():
        assert (out / "results" / name).read_bytes() == data
    saved = json.loads((out / "results" / "vandal.json").read_text())
    assert saved["score"] == 5.0


def test_reader_cannot_read_hidden_checks_or_the_reference(graded):
    checks = checks_of(graded["results"]["reader"])
    message = checks["0a-basic"]["message"]
    assert checks["0a-basic"]["status"] == "fail"
    assert "PermissionError" in message or "FileNotFoundError" in message
    assert checks["0b-basic"]["status"] == "pass"


def test_gradebook_and_gradescope_files_are_complete(graded):
    out = graded["out"]
    with open(out / "gradebook.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["student"] for r in rows) == sorted(graded["results"])
    by_student = {r["student"]: r for r in rows}
    assert by_student["loop_forever"]["0a"] == "0" and by_student["loop_forever"]["0b"] == "2"
    assert by_student["correct"]["total"] == "5"
    gs = json.loads((out / "gradescope" / "loop_forever" / "results.json").read_text())
    assert gs["score"] == 2.0
    visibility = {t["number"]: t["visibility"] for t in gs["tests"]}
    assert visibility["0a-basic"] == "visible"
    assert visibility["0a-hidden-quokka"] == "after_published"
    assert all({"name", "score", "max_score", "output"} <= set(t) for t in gs["tests"])


def test_escaper_changed_nothing_outside_its_scratch_and_earned_its_points(graded):
    result = graded["results"]["escaper"]
    if not isinstance(result["sandbox"].get("landlock"), dict):
        pytest.skip("no file-system allow-list (Landlock) on this machine: graded unsafely")
    assert result["score"] == 5.0, result["checks"]
    assert all(changes == [] for changes in graded["changed"].values()), graded["changed"]
    assert graded["appeared"] == []


def test_finder_finds_no_copy_of_the_reference_anywhere(graded):
    result = graded["results"]["finder"]
    if not isinstance(result["sandbox"].get("landlock"), dict):
        pytest.skip("no file-system allow-list (Landlock) on this machine: graded unsafely")
    assert result["score"] == 0.0, result["checks"]
    assert "readable copies: []" in result["output"]
    assert all("found no readable copy" in c["message"] for c in result["checks"])
