"""Proof that homework 2's checks are right, using the real grading pipeline.

* every entry of ``tests/hw2/hw2_mistakes.py`` (the reference with ONE realistic
  mistake, generated here) fails the checks designed to catch it and loses
  points in its task; tasks that do not build on the broken function keep all
  their points (a wrong helper may also cost the later tasks that call it:
  2a's sampler is used by 2d-2g, 2b's densities by 2e-2f, 2c's KL by 2d and 2g);
* every file in ``tests/hw2/correct/`` (a different but correct implementation:
  torch.distributions, other equivalent formulas, other ways of drawing the
  noise) and the reference solution itself get full marks;
* the released skeleton gets zero without crashing the grader;
* the committed ``homework/hw2_vae/`` is what ``release`` generates, and the
  student-side public checks (replayed expected values) pass the solution.

All submissions are graded once, two at a time, each in its own sandbox worker.
"""

from __future__ import annotations

import difflib
import filecmp
import importlib.util
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coursekit.grading import grade_submission, run_public_checks
from coursekit.grading.homework import load_checks, resolve_homework
from coursekit.grading.reference import LiveReference
from coursekit.grading.release import release

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MASTER = ROOT / "solutions" / "hw2_vae"
RELEASED = ROOT / "homework" / "hw2_vae"


def _load_mistakes() -> dict:
    # loaded by path: a plain ``import mistakes`` would collide with other homeworks' files
    spec = importlib.util.spec_from_file_location("_hw2_mistakes", HERE / "hw2_mistakes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MISTAKES


MISTAKES = _load_mistakes()
# mistake -> the checks designed to catch it
CATCHERS = {
    "sigma_equals_v": {"2a-moments"},
    "sample_detached": {"2a-hidden-reparam"},
    "logvar_as_var": {"2b-log-normal", "2b-mixture"},
    "mixture_no_logsumexp": {"2b-hidden-far"},
    "mixture_missing_log_k": {"2b-mixture", "2b-hidden-batch"},
    "kl_sign_flipped": {"2c-basic", "2c-hidden-props"},
    "elbo_sum_over_batch": {"2d-elbo", "2d-hidden-batch"},
    "iwae_mean_not_logmeanexp": {"2e-iwae", "2e-hidden-monotone", "2e-hidden-far"},
    "iwae_no_prior": {"2e-iwae"},
    "gmvae_kl_at_mean": {"2f-gmvae"},
    "ssvae_no_entropy": {"2g-ssvae", "2g-hidden-batch"},
    "ssvae_classes_unweighted": {"2g-ssvae", "2g-hidden-batch"},
}
# task -> later tasks whose reference code calls that task's function
USED_BY = {"2a": {"2d", "2e", "2f", "2g"}, "2b": {"2e", "2f"}, "2c": {"2d", "2g"}}
CORRECT = sorted(p.stem for p in (HERE / "correct").glob("*.py"))


def wrong_text(name: str) -> str:
    """The reference solution with mistake ``name`` applied."""
    text = (MASTER / "submission.py").read_text()
    for old, new in MISTAKES[name][2]:
        assert text.count(old) == 1, f"{name}: the text to replace must occur once: {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw2", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for the solution, the skeleton, every mistake and every variant."""
    folder = tmp_path_factory.mktemp("hw2_subs")
    paths = {"solution": MASTER / "submission.py", "skeleton": RELEASED / "submission.py"}
    paths.update({f"correct/{n}": HERE / "correct" / f"{n}.py" for n in CORRECT})
    for name in MISTAKES:
        (folder / name).mkdir()
        path = folder / name / "submission.py"
        path.write_text(wrong_text(name))
        paths[f"wrong/{name}"] = path
    specs = load_checks(hw, include_hidden=True)
    reference = LiveReference(hw.master_dir, hw.harness_file())

    def run(item):
        slot, (label, path) = item
        return label, grade_submission(
            hw, path, root=ROOT, specs=specs, reference=reference, slot=slot
        )

    items = [(i % 2, item) for i, item in enumerate(paths.items())]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, items))
    for label, result in results.items():
        bad = [(c["id"], c["message"]) for c in result["checks"] if c["status"] == "error"]
        assert not bad, f"{label}: checks errored (a bug in a check or a crashed worker): {bad}"
    return results


def _by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def test_every_task_has_public_and_hidden_checks(hw):
    specs = load_checks(hw, include_hidden=True)
    for task in hw.tasks:
        kinds = {s.hidden for s in specs if s.task == task}
        assert kinds == {False, True}, f"task {task}: public and hidden checks expected"
    assert {s.id for s in specs} >= set().union(*CATCHERS.values())


def test_every_mistake_is_listed_and_is_one_small_marked_edit():
    assert sorted(MISTAKES) == sorted(CATCHERS)
    reference = (MASTER / "submission.py").read_text().splitlines()
    for name in MISTAKES:
        changed = [
            line
            for line in difflib.unified_diff(reference, wrong_text(name).splitlines(),
                                             lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert 2 <= len(changed) <= 4, f"{name}: expected one small edit, got {changed}"
        assert any("MISTAKE" in line for line in changed), f"{name}: mark the mistake"


def test_reference_solution_gets_full_marks(graded):
    result = graded["solution"]
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed
    assert result["score"] == result["max_score"] > 0


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variant_gets_full_marks(graded, name):
    result = graded[f"correct/{name}"]
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed, f"{name} is correct but lost points: {failed}"
    assert result["score"] == result["max_score"]


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_wrong_submission_loses_its_task_only(graded, name):
    task = MISTAKES[name][0]
    checks = _by_id(graded[f"wrong/{name}"])
    for check_id in sorted(CATCHERS[name]):
        assert checks[check_id]["task"] == task
        assert checks[check_id]["status"] == "fail", f"{name}: {check_id} should catch it"
        assert checks[check_id]["score"] == 0
        assert checks[check_id]["message"], "a failing check must tell the student why"
    allowed = {task} | USED_BY.get(task, set())
    others = [(c["id"], c["message"]) for c in checks.values()
              if c["task"] not in allowed and c["status"] != "pass"]
    assert not others, f"{name} breaks task {task}, yet lost points elsewhere: {others}"
    in_task = [c for c in checks.values() if c["task"] == task]
    assert sum(c["score"] for c in in_task) < sum(c["max_score"] for c in in_task)


def test_released_skeleton_gets_zero_without_crashing(graded):
    result = graded["skeleton"]
    assert result["score"] == 0 and result["max_score"] > 0
    for c in result["checks"]:
        assert c["status"] == "fail", c
        assert "NotImplementedError" in c["message"], c


def test_committed_release_is_fresh(tmp_path):
    (out,) = release(["hw2"], root=ROOT, out=tmp_path)
    cmp = filecmp.dircmp(out, RELEASED, ignore=["__pycache__", ".ipynb_checkpoints"])
    assert not (cmp.left_only or cmp.right_only), "homework/hw2_vae is stale: run release"
    # public_expected.json is compared numerically by tests/grading/test_release.py
    for name in ["submission.py", "checks/public.py", "checks/harness.py", "homework.json"]:
        assert filecmp.cmp(out / name, RELEASED / name, shallow=False), name
    assert not (RELEASED / "checks" / "hidden.py").exists()


def test_student_side_public_checks_pass_the_solution(tmp_path):
    """A student's copy (no solutions/) with a correct submission: all public checks pass."""
    course = tmp_path / "course"
    shutil.copytree(RELEASED, course / "homework" / "hw2_vae")
    shutil.copyfile(MASTER / "submission.py", course / "homework" / "hw2_vae" / "submission.py")
    result = run_public_checks("hw2", root=course, verbose=False)
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed
    assert result["score"] == result["max_score"] > 0
    assert all("hidden" not in c["id"] for c in result["checks"])
