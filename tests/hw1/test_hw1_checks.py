"""Proof that homework 1's checks are right, using the real grading pipeline.

* every entry of ``tests/hw1/mistakes.py`` (the reference, or a correct variant,
  with ONE realistic mistake, generated here) loses points in exactly the task its
  mistake breaks, through the checks designed to catch that mistake, and keeps
  every other task's points (when graded, em_step and mc_kl_estimate run with a
  correct gaussian_log_density in place of the student's: checks/harness.py);
* every file in ``tests/hw1/correct/`` and every entry of ``CORRECT_EDITS`` (a
  different but correct implementation) gets full marks.

The solution, the skeleton and the release are checked for every homework by
``tests/homework/test_contract.py``. Each submission is graded in its own
sandbox worker process (~3 s each).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homework.mistakes import apply_mistake, assert_one_small_marked_edit

from coursekit.grading import grade_submission
from coursekit.grading.homework import load_checks, resolve_homework
from coursekit.grading.reference import LiveReference
from coursekit.grading.release import strip_solutions

from .mistakes import CORRECT_EDITS, MISTAKES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MASTER = ROOT / "solutions" / "hw1_probability"

# mistake -> (the task it breaks, the checks designed to catch it)
WRONG = {
    "missing_transpose": ("1a", {"1a-basic", "1a-hidden-scipy"}),
    "logdet_via_det": ("1a", {"1a-hidden-high-dim"}),
    "cholesky_jitter": ("1a", {"1a-hidden-near-singular"}),
    "marginal_fancy_index": ("1b", {"1b-marginal", "1b-hidden-marginal-edge"}),
    "conditional_transpose": ("1b", {"1b-conditional", "1b-hidden-conditional-batch"}),
    "kl_wrong_sign": ("1c", {"1c-kl-diag", "1c-hidden-kl-properties"}),
    "kl_mean_over_dims": ("1c", {"1c-kl-diag"}),
    "kl_categorical_naive": ("1c", {"1c-kl-categorical", "1c-hidden-categorical-zeros"}),
    "mc_var_as_std": ("1c", {"1c-mc-unbiased"}),
    "mc_wrong_samples": ("1c", {"1c-mc-unbiased", "1c-hidden-mc-variance"}),
    "mle_unbiased": ("1d", {"1d-basic", "1d-hidden-two-points"}),
    "mle_missing_transpose": ("1d", {"1d-basic"}),
    "no_logsumexp": ("1e", {"1e-hidden-far-points"}),
    "resp_wrong_axis": ("1e", {"1e-basic", "1e-monotone"}),
    "em_cov_old_means": ("1e", {"1e-basic"}),
    # em_step and mc_kl_estimate of this submission call its wrong gaussian_log_density
    "reused_log_density_half_logdet": ("1a", {"1a-basic", "1a-d1"}),
}
CORRECT = sorted([p.stem for p in (HERE / "correct").glob("*.py")] + list(CORRECT_EDITS))


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw1", root=ROOT)


@pytest.fixture(scope="module")
def grade(hw):
    """grade(path) -> result dict; checks and the reference are loaded once."""
    specs = load_checks(hw, include_hidden=True)
    reference = LiveReference(hw.master_dir, hw.harness_file())

    def run(path: Path) -> dict:
        result = grade_submission(hw, path, root=ROOT, specs=specs, reference=reference)
        bad = [(c["id"], c["message"]) for c in result["checks"] if c["status"] == "error"]
        assert not bad, f"checks errored (a bug in a check or a crashed worker): {bad}"
        return result

    return run


def _by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def correct_text(name: str) -> str:
    """Correct variant ``name``: a file in correct/, or the reference with its edits."""
    if name in CORRECT_EDITS:
        reference = (MASTER / "submission.py").read_text()
        return apply_mistake(reference, CORRECT_EDITS[name], name)
    return (HERE / "correct" / f"{name}.py").read_text()


def base_text(name: str) -> str:
    """The submission mistake ``name`` edits: the reference, or a correct variant."""
    entry = MISTAKES[name]
    return correct_text(entry[2]) if len(entry) > 2 else (MASTER / "submission.py").read_text()


def wrong_submission(name: str, folder: Path) -> Path:
    """Write the reference with mistake ``name`` applied to ``folder/submission.py``."""
    path = folder / "submission.py"
    path.write_text(apply_mistake(base_text(name), MISTAKES[name][1], name))
    return path


def test_every_mistake_is_listed_and_is_one_small_marked_edit(hw, tmp_path):
    assert sorted(MISTAKES) == sorted(WRONG)
    assert len(WRONG) >= 10
    specs = load_checks(hw, include_hidden=True)
    assert {s.id for s in specs} >= set().union(*(ids for _, ids in WRONG.values()))
    for name in WRONG:
        wrong = wrong_submission(name, tmp_path).read_text()
        assert_one_small_marked_edit(base_text(name), wrong, name, max_lines=6)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variant_gets_full_marks(grade, name, tmp_path):
    path = tmp_path / "submission.py"
    path.write_text(correct_text(name))
    result = grade(path)
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed, f"{name} is correct but lost points: {failed}"
    assert result["score"] == result["max_score"]


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_submission_loses_only_its_task(grade, name, tmp_path):
    task, catchers = WRONG[name]
    checks = _by_id(grade(wrong_submission(name, tmp_path)))
    for check_id in sorted(catchers):
        assert checks[check_id]["status"] == "fail", f"{name}: {check_id} should catch it"
        assert checks[check_id]["score"] == 0
        assert checks[check_id]["message"], "a failing check must tell the student why"
    others = [c for c in checks.values() if c["task"] != task and c["status"] != "pass"]
    assert not others, f"{name} breaks only task {task}, yet lost {others}"
    in_task = [c for c in checks.values() if c["task"] == task]
    assert sum(c["score"] for c in in_task) < sum(c["max_score"] for c in in_task)


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(grade, tmp_path):
    path = tmp_path / "submission.py"
    path.write_text(strip_solutions((MASTER / "submission.py").read_text()))
    for c in grade(path)["checks"]:
        message = c["message"]
        assert c["status"] == "fail", (c["id"], message)
        assert " raised NotImplementedError: " in message, (c["id"], message)
        assert not message.startswith("harness"), (c["id"], message)
        assert message.count("NotImplementedError") == 1, (c["id"], message)
