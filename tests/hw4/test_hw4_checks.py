"""Proof that homework 4's checks are right, using the real grading pipeline.

* every entry of ``tests/hw4/hw4_mistakes.py`` (the reference with ONE realistic
  mistake, generated here) fails the checks designed to catch it and loses
  points in its own task ONLY: the conditional losses of 4c are graded with
  correct ``discriminator_loss``/``generator_loss`` and the WGAN-GP critic loss of
  4f with a correct ``gradient_penalty`` (``GRADED_HELPERS`` of the hidden checks,
  swapped in by the harness), and 4e/4f always use the harness's own
  ``interpolates``, so a wrong helper costs points once; what a mistake gets right
  keeps its points (``KEEPS``);
* every file in ``tests/hw4/correct/`` (a different but correct implementation:
  torch's ready-made losses, a concatenated discriminator call, lerp, other
  softplus, norm and conjugate forms, the interpolation weight on the other side)
  gets full marks.

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
MASTER = ROOT / "solutions" / "hw4_gans"
MISTAKES = load_mistakes(HERE / "hw4_mistakes.py")

D_LOSS = {"4a-basic", "4a-stable", "4a-hidden-batch"}
G_LOSS = {"4b-basic", "4b-saturation", "4b-hidden-batch"}
KL_BOUND = {"4g-bound", "4g-tight", "4g-hidden-batch"}
KL_CRITIC = {"4g-critic", "4g-tight", "4g-hidden-batch"}
# mistake -> the checks designed to catch it
CATCHERS = {
    "d_loss_log_of_sigmoid": {"4a-stable", "4a-hidden-batch"},
    "d_loss_labels_swapped": D_LOSS,
    "d_loss_mean_of_concatenation": {"4a-basic", "4a-stable", "4a-hidden-batch"},
    "g_loss_minimax": G_LOSS,
    "g_loss_log_of_sigmoid": {"4b-saturation", "4b-hidden-batch"},
    "g_loss_fake_label": G_LOSS,
    "cond_fakes_with_real_labels": {"4c-discriminator", "4c-hidden-batch"},
    "cond_no_detach": {"4c-discriminator", "4c-hidden-batch"},
    "cond_generator_detached": {"4c-generator", "4c-hidden-batch"},
    "interp_eps_per_feature": {"4d-segment", "4d-uniform", "4d-hidden-shapes"},
    "interp_one_eps_per_batch": {"4d-uniform"},
    "interp_normal_eps": {"4d-segment", "4d-uniform"},
    "interp_eps_along_last_axis": {"4d-segment", "4d-uniform", "4d-hidden-shapes"},
    "gp_norm_over_batch": {"4e-penalty", "4e-hidden-shapes"},
    "gp_squared_norm": {"4e-penalty", "4e-hidden-shapes"},
    "gp_no_create_graph": {"4e-penalty", "4e-hidden-shapes"},
    "gp_grad_of_mean": {"4e-penalty", "4e-hidden-shapes"},
    "gp_norm_over_last_axis": {"4e-hidden-shapes"},
    "wgan_critic_sign": {"4f-critic", "4f-train", "4f-hidden-weights"},
    "wgan_no_gp_weight": {"4f-critic", "4f-train", "4f-hidden-weights"},
    "wgan_critic_no_detach": {"4f-critic", "4f-hidden-weights"},
    "wgan_generator_sign": {"4f-generator", "4f-hidden-weights"},
    "kl_conjugate_without_minus_one": KL_BOUND,
    "kl_conjugate_on_real": KL_BOUND,
    "kl_critic_without_plus_one": KL_CRITIC,
    "kl_critic_ratio_inverted": KL_CRITIC,
}
# mistake -> checks of its own task that must still pass (what it gets right earns points)
KEEPS = {
    "d_loss_log_of_sigmoid": {"4a-basic"},
    "g_loss_log_of_sigmoid": {"4b-basic"},
    "cond_no_detach": {"4c-generator"},
    "cond_generator_detached": {"4c-discriminator"},
    "interp_one_eps_per_batch": {"4d-segment", "4d-hidden-shapes"},
    "gp_norm_over_last_axis": {"4e-penalty"},
    "wgan_critic_no_detach": {"4f-generator", "4f-train"},
    "wgan_generator_sign": {"4f-critic", "4f-train"},
    "kl_critic_without_plus_one": {"4g-bound"},
    "kl_critic_ratio_inverted": {"4g-bound"},
    "kl_conjugate_without_minus_one": {"4g-critic"},
    "kl_conjugate_on_real": {"4g-critic"},
}
CORRECT = sorted(p.stem for p in (HERE / "correct").glob("*.py"))


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw4", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for every mistake, every correct variant and the skeleton."""
    return grade_all(hw, ROOT, MASTER, MISTAKES, HERE / "correct",
                     tmp_path_factory.mktemp("hw4_subs"))


def test_every_mistake_is_listed_and_is_one_small_marked_edit(hw):
    assert_mistakes_listed_and_small(hw, MASTER, MISTAKES, CATCHERS)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variant_gets_full_marks(graded, name):
    assert_full_marks(graded[f"correct/{name}"], name)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_wrong_submission_loses_its_task_only(graded, name):
    assert_loses_its_task_only(graded[f"wrong/{name}"], name, MISTAKES[name][0],
                               CATCHERS[name], KEEPS.get(name, set()))


# task -> the student's functions its checks may name
FUNCTIONS = {"4a": ("discriminator_loss",), "4b": ("generator_loss",),
             "4c": ("conditional_discriminator_loss", "conditional_generator_loss"),
             "4d": ("interpolates",), "4e": ("gradient_penalty",),
             "4f": ("wgan_critic_loss", "wgan_generator_loss"),
             "4g": ("kl_lower_bound", "kl_optimal_critic")}


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(graded):
    assert_skeleton_messages(graded["skeleton"], FUNCTIONS)
