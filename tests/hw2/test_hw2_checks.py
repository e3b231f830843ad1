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

from pathlib import Path

import pytest
from homework.graded_batch import (
    assert_full_marks,
    assert_loses_its_task_only,
    assert_mistakes_listed_and_small,
    assert_skeleton_messages,
    grade_all,
    load_mistakes,
)

from coursekit.grading.homework import resolve_homework

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MASTER = ROOT / "solutions" / "hw2_vae"
MISTAKES = load_mistakes(HERE / "hw2_mistakes.py")

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


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw2", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for every mistake, every correct variant and the skeleton."""
    return grade_all(hw, ROOT, MASTER, MISTAKES, HERE / "correct",
                     tmp_path_factory.mktemp("hw2_subs"))


def test_every_mistake_is_listed_and_is_one_small_marked_edit(hw):
    assert_mistakes_listed_and_small(hw, MASTER, MISTAKES, CATCHERS)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variant_gets_full_marks(graded, name):
    assert_full_marks(graded[f"correct/{name}"], name)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_wrong_submission_loses_its_task_only(graded, name):
    assert_loses_its_task_only(graded[f"wrong/{name}"], name, MISTAKES[name][0],
                               CATCHERS[name], KEEPS.get(name, set()))


# task -> the student's function its checks call (2b: either of two)
FUNCTIONS = {"2a": ("sample_gaussian",), "2b": ("log_normal", "log_normal_mixture"),
             "2c": ("kl_normal",), "2d": ("negative_elbo_bound",),
             "2e": ("negative_iwae_bound",), "2f": ("gmvae_negative_elbo_bound",),
             "2g": ("ssvae_loss",)}


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(graded):
    assert_skeleton_messages(graded["skeleton"], FUNCTIONS)
