"""Submissions that delegate their tasks to the course library score 0 in those tasks.

Each test grades the master solution with a few functions redefined at the end
of the file (a later ``def`` replaces an earlier one), so every other task is
still correct. Only the checks of the tasks involved are run, to keep it quick.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coursekit.grading import grade_submission, run_public_checks
from coursekit.grading.grader import format_report
from coursekit.grading.homework import load_checks, resolve_homework
from coursekit.grading.release import release
from coursekit.grading.sandbox import Limits, Sandbox

from .conftest import REPO

MODULE_LEVEL_HW1 = """
from coursekit import probability as _p


def gaussian_log_density(x, mean, cov):
    return _p.gaussian_log_prob(x, mean, cov)
"""

CALL_TIME_HW1 = """
import importlib
import sys


def gaussian_mle(x):
    module = importlib.import_module("coursekit." + "prob" + "ability")
    return module.gaussian_mle(x)


_own_kl_categorical = kl_categorical


def kl_categorical(p, q):
    try:  # evasive: falls back to its own code when the import is refused
        return __import__("coursekit.probability", fromlist=["kl"]).kl_categorical(p, q)
    except ImportError:
        module = sys.modules.get("coursekit.probability")
        return module.kl_categorical(p, q) if module else _own_kl_categorical(p, q)
"""

CALL_TIME_HW2 = """
def kl_normal(qm, qv, pm, pv):
    from coursekit.functional import kl_normal_diag

    return kl_normal_diag(qm, qv, pm, pv)


_own_log_normal = log_normal


def log_normal(x, m, v):
    try:
        from coursekit import vae  # noqa: F401

        import coursekit.functional as cf

        return cf.log_normal_diag(x, m, v)
    except ImportError:
        return _own_log_normal(x, m, v)
"""


def _grade(tmp_path: Path, hw_name: str, extra: str, tasks: set[str]) -> dict:
    hw = resolve_homework(hw_name, REPO)
    folder = tmp_path / "student"
    folder.mkdir()
    source = (hw.master_dir / "submission.py").read_text()
    (folder / "submission.py").write_text(source + "\n" + extra)
    specs = [s for s in load_checks(hw, include_hidden=True) if s.task in tasks]
    assert specs, f"checks of {sorted(tasks)}: expected some, got none"
    return grade_submission(hw, folder, specs=specs)


def _by_task(result: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in result["checks"]:
        out.setdefault(c["task"], []).append(c)
    return out


def test_module_level_import_of_the_course_library_zeroes_every_task(tmp_path):
    result = _grade(tmp_path, "hw1", MODULE_LEVEL_HW1, {"1a", "1d"})
    tasks = {c["task"] for c in result["checks"]}
    assert tasks == {"1a", "1d"}, f"tasks graded: expected 1a and 1d, got {sorted(tasks)}"
    for c in result["checks"]:
        assert c["score"] == 0, f"{c['id']} score: expected 0, got {c['score']}"
        assert "coursekit.probability" in c["message"], (
            f"{c['id']} message: expected to name coursekit.probability, got {c['message']!r}"
        )
        assert "does not allow" in c["message"], (
            f"{c['id']} message: expected to say hw1 does not allow it, got {c['message']!r}"
        )
    used = result["forbidden_use"]["module_level"]
    assert used == ["coursekit.probability"], (
        f"forbidden_use.module_level: expected ['coursekit.probability'], got {used}"
    )


def test_call_time_delegation_zeroes_only_the_delegating_tasks_hw1(tmp_path):
    result = _grade(tmp_path, "hw1", CALL_TIME_HW1, {"1a", "1c", "1d"})
    tasks = _by_task(result)
    for task in ("1c", "1d"):
        for c in tasks[task]:
            assert c["score"] == 0, f"{c['id']} score: expected 0, got {c['score']}"
            assert f"task {task} used coursekit.probability" in c["message"], (
                f"{c['id']} message: expected 'task {task} used coursekit.probability', "
                f"got {c['message']!r}"
            )
    for c in tasks["1a"]:
        assert c["status"] == "pass", f"{c['id']} status: expected pass, got {c['status']}"
    by_task = result["forbidden_use"]["by_task"]
    assert by_task == {"1c": ["coursekit.probability"], "1d": ["coursekit.probability"]}, (
        f"forbidden_use.by_task: expected 1c and 1d, got {by_task}"
    )


def test_call_time_delegation_zeroes_only_the_delegating_tasks_hw2(tmp_path):
    result = _grade(tmp_path, "hw2", CALL_TIME_HW2, {"2a", "2b", "2c"})
    tasks = _by_task(result)
    for task, module in (("2b", "coursekit.vae"), ("2c", "coursekit.functional")):
        for c in tasks[task]:
            assert c["score"] == 0, f"{c['id']} score: expected 0, got {c['score']}"
            assert module in c["message"], (
                f"{c['id']} message: expected to name {module}, got {c['message']!r}"
            )
    for c in tasks["2a"]:
        assert c["status"] == "pass", f"{c['id']} status: expected pass, got {c['status']}"


@pytest.mark.parametrize("hw_name", ["hw1", "hw2", "hw3", "hw4"])
def test_homework_forbids_the_modules_that_implement_its_tasks(hw_name):
    expected = {
        "hw1": {"coursekit.probability", "coursekit.functional", "coursekit.mixture"},
        "hw2": {"coursekit.vae", "coursekit.functional", "coursekit.metrics", "coursekit.latent"},
        "hw3": {"coursekit.flows", "coursekit.autoregressive"},
        "hw4": {"coursekit.gan", "coursekit.metrics"},
    }[hw_name]
    got = set(resolve_homework(hw_name, REPO).forbidden_modules)
    assert expected <= got, f"{hw_name} forbidden_modules: expected {sorted(expected)}, got {got}"


def test_results_record_modules_loaded_at_import_and_per_task(course, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "submission.py").write_text(
        "import importlib\nimport fractions  # noqa: F401\n\n\n"
        "def add(a, b):\n"
        "    importlib.import_module('colo' + 'rsys')\n"
        "    return a + b\n\n\n"
        "def scale(x, factor):\n"
        "    return x * factor\n"
    )
    result = grade_submission("hw0", folder, root=course)
    module_level = result["imports"]["module_level"]
    assert "fractions" in module_level, (
        f"module_level imports: expected fractions, got {module_level}"
    )
    by_task = result["imports"]["by_task"]
    assert "colorsys" in by_task.get("0a", []), f"0a imports: expected colorsys, got {by_task}"
    assert "colorsys" not in by_task.get("0b", []), (
        f"0b imports: expected no colorsys, got {by_task}"
    )
    assert result["score"] == result["max_score"], (
        f"score: expected {result['max_score']} (nothing forbidden), got {result['score']}"
    )


def test_student_side_check_reports_the_forbidden_module(course, tmp_path):
    meta_path = course / "solutions" / "hw0_fake" / "homework.json"
    meta = json.loads(meta_path.read_text())
    meta["forbidden_modules"] = ["coursekit.probability"]
    meta_path.write_text(json.dumps(meta))
    release(["hw0"], root=course)
    shutil.rmtree(course / "solutions")  # what a student has: homework/ only
    mine = tmp_path / "submission.py"
    mine.write_text(
        "def add(a, b):\n"
        "    import coursekit.probability  # noqa: F401\n"
        "    return a + b\n\n\n"
        "def scale(x, factor):\n"
        "    return x * factor\n"
    )
    result = run_public_checks("hw0", path=mine, root=course, verbose=False)
    report = format_report(result)
    assert "0 points: your code for task 0a used coursekit.probability" in report, (
        f"student report: expected the reason for 0 points in task 0a, got {report}"
    )
    passed = {c["id"]: c["status"] for c in result["checks"]}
    assert passed.get("0b-basic") == "pass", f"0b-basic: expected pass, got {passed}"


def test_another_program_cannot_read_a_forbidden_module(course, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "submission.py").write_text(
        "import subprocess\nimport sys\n\n\n"
        "def add(a, b):\n"
        "    code = 'import coursekit.probability as p; print(hasattr(p, \"gaussian_mle\"))'\n"
        "    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)\n"
        "    return run.stdout.strip() or run.stderr.strip()[-200:]\n"
    )
    with Sandbox(
        folder / "submission.py",
        limits=Limits(mem_bytes=3 * 1024**3),
        forbidden=["coursekit.probability"],
    ) as box:
        got = box.call("add", (1, 2), {}, seed=0, timeout=60)
        covered = box.defences.get("covered_forbidden")
    if box.defences.get("namespaces") != "net+mount":
        pytest.skip(f"no private mount namespace here: {box.defences.get('namespaces')}")
    assert covered, f"covered_forbidden: expected the module's files, got {covered!r}"
    assert got != "True", f"child process: expected no gaussian_mle in the module, got {got!r}"
