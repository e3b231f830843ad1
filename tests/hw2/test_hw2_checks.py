"""Proof that homework 2's checks are right, using the real grading pipeline.

* every entry of ``tests/hw2/hw2_mistakes.py`` (the reference with ONE realistic
  mistake, generated here) fails the checks designed to catch it and loses
  points in its own task ONLY: the bounds of 2d-2g are graded with correct
  helpers in place of the student's 2a-2c functions (``GRADED_HELPERS`` of the
  hidden checks, swapped in by the harness), so a wrong ``sample_gaussian`` or
  ``log_normal`` costs points once; a wrong component returned next to a right
  total (e.g. the sign of ``rec``) keeps the total's points (``KEEPS``);
* every file in ``tests/hw2/correct/`` (a different but correct implementation:
  torch.distributions, other equivalent formulas, other ways of drawing the
  noise) gets full marks.

The solution, the skeleton and the release are checked for every homework by
``tests/homework/test_contract.py``. All submissions are graded once, two at a
time, each in its own sandbox worker.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from homework.mistakes import apply_mistake, assert_one_small_marked_edit

from coursekit.grading import grade_submission
from coursekit.grading.homework import load_checks, resolve_homework
from coursekit.grading.reference import LiveReference
from coursekit.grading.release import strip_solutions

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MASTER = ROOT / "solutions" / "hw2_vae"


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
    "sample_uniform_noise": {"2a-moments"},
    "logvar_as_var": {"2b-log-normal", "2b-mixture"},
    "log_normal_sums_before_broadcast": {"2b-log-normal"},
    "mixture_no_logsumexp": {"2b-hidden-far"},
    "mixture_missing_log_k": {"2b-mixture", "2b-hidden-batch"},
    "kl_sign_flipped": {"2c-basic", "2c-hidden-props"},
    "kl_sums_before_broadcast": {"2c-basic"},
    "elbo_sum_over_batch": {"2d-elbo", "2d-hidden-batch"},
    "elbo_std_is_var": {"2d-elbo", "2d-terms"},
    "elbo_rec_sign": {"2d-terms"},
    "elbo_prior_on_cpu": {"2d-hidden-batch"},
    "iwae_mean_not_logmeanexp": {"2e-iwae", "2e-hidden-monotone", "2e-hidden-far"},
    "iwae_max_weight": {"2e-hidden-far"},
    "iwae_no_prior": {"2e-iwae"},
    "gmvae_kl_at_mean": {"2f-terms"},
    "ssvae_no_entropy": {"2g-ssvae", "2g-terms"},
    "ssvae_classes_unweighted": {"2g-ssvae", "2g-hidden-batch"},
    "ssvae_reshape_not_transpose": {"2g-ssvae", "2g-hidden-batch"},
}
# mistake -> checks of its own task that must still pass (what it gets right earns points)
KEEPS = {"elbo_rec_sign": {"2d-elbo", "2d-hidden-batch", "2d-train"}}
CORRECT = sorted(p.stem for p in (HERE / "correct").glob("*.py"))


def wrong_text(name: str) -> str:
    """The reference solution with mistake ``name`` applied."""
    return apply_mistake((MASTER / "submission.py").read_text(), MISTAKES[name][2], name)


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw2", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for every mistake and every correct variant."""
    folder = tmp_path_factory.mktemp("hw2_subs")
    paths = {f"correct/{n}": HERE / "correct" / f"{n}.py" for n in CORRECT}
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

    (folder / "skeleton").mkdir()
    skeleton = folder / "skeleton" / "submission.py"
    skeleton.write_text(strip_solutions((MASTER / "submission.py").read_text()))
    paths["skeleton"] = skeleton
    items = [(i % 2, item) for i, item in enumerate(paths.items())]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, items))
    for label, result in results.items():
        bad = [(c["id"], c["message"]) for c in result["checks"] if c["status"] == "error"]
        assert not bad, f"{label}: checks errored (a bug in a check or a crashed worker): {bad}"
    return results


def _by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def test_every_mistake_is_listed_and_is_one_small_marked_edit(hw):
    assert sorted(MISTAKES) == sorted(CATCHERS)
    specs = load_checks(hw, include_hidden=True)
    assert {s.id for s in specs} >= set().union(*CATCHERS.values())
    reference = (MASTER / "submission.py").read_text()
    for name in MISTAKES:
        assert_one_small_marked_edit(reference, wrong_text(name), name, max_lines=4)


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
    others = [(c["id"], c["message"]) for c in checks.values()
              if c["task"] != task and c["status"] != "pass"]
    assert not others, f"{name} breaks task {task}, yet lost points elsewhere: {others}"
    kept = [(i, checks[i]["message"]) for i in sorted(KEEPS.get(name, ())) if
            checks[i]["status"] != "pass"]
    assert not kept, f"{name}: what it gets right must keep its points: {kept}"
    in_task = [c for c in checks.values() if c["task"] == task]
    assert sum(c["score"] for c in in_task) < sum(c["max_score"] for c in in_task)


# task -> the student's function its checks call (2b: either of two)
FUNCTIONS = {"2a": ("sample_gaussian",), "2b": ("log_normal", "log_normal_mixture"),
             "2c": ("kl_normal",), "2d": ("negative_elbo_bound",),
             "2e": ("negative_iwae_bound",), "2f": ("gmvae_negative_elbo_bound",),
             "2g": ("ssvae_loss",)}


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(graded):
    for c in graded["skeleton"]["checks"]:
        message = c["message"]
        assert c["status"] == "fail", (c["id"], message)
        assert message.startswith(tuple(f"{f} raised NotImplementedError: "
                                        for f in FUNCTIONS[c["task"]])), (c["id"], message)
        assert "harness" not in message, (c["id"], message)
        assert message.count("NotImplementedError") == 1, (c["id"], message)
        assert message.endswith(")") and "submission.py, line " in message, (c["id"], message)
