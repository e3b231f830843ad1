"""Proof that homework 3's checks are right, using the real grading pipeline.

* every entry of ``tests/hw3/hw3_mistakes.py`` (the reference with ONE realistic
  mistake, generated here) fails the checks designed to catch it and loses
  points in its own task ONLY: the MAF of 3d is graded with correct
  ``made_forward``/``made_inverse`` in place of the student's 3b/3c functions
  (``GRADED_HELPERS`` of the hidden checks, swapped in by the harness), so a
  wrong MADE block costs points once; what a mistake gets right keeps its points
  (``KEEPS``: e.g. a wrong ``maf_inverse`` does not cost the log-density or the
  training check);
* every file in ``tests/hw3/correct/`` (a different but correct implementation:
  loops instead of broadcasting, other inverse loops, other softplus and split
  forms) gets full marks.

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
MASTER = ROOT / "solutions" / "hw3_flows"
MISTAKES = load_mistakes(HERE / "hw3_mistakes.py")

MASKS = {"3a-example", "3a-property", "3a-hidden-cases"}
FORWARD = {"3b-forward", "3b-autograd", "3b-hidden-batch"}
# mistake -> the checks designed to catch it
CATCHERS = {
    "mask_output_geq": MASKS,
    "mask_hidden_strict": MASKS,
    "degrees_are_order": MASKS,
    "hidden_degrees_up_to_n": MASKS,
    "forward_logdet_sign": FORWARD,
    "forward_exp_plus_alpha": FORWARD,
    "forward_logdet_over_batch": FORWARD,
    "inverse_one_pass": {"3c-inverse", "3c-hidden-order"},
    "inverse_logdet_sign": {"3c-inverse", "3c-autograd", "3c-hidden-order"},
    "maf_dropped_logdet": {"3d-log-prob", "3d-train", "3d-hidden-blocks"},
    "maf_permutation_not_inverted": {"3d-inverse", "3d-hidden-blocks"},
    "maf_no_reversal": {"3d-log-prob", "3d-train", "3d-hidden-blocks"},
    "maf_logdet_over_batch": {"3d-log-prob", "3d-train", "3d-hidden-blocks"},
    "planar_u_not_u_hat": {"3e-planar", "3e-hidden-autograd"},
    "planar_h_not_hprime": {"3e-planar", "3e-hidden-autograd"},
    "planar_wrong_axis": {"3e-planar", "3e-hidden-autograd"},
    "u_hat_no_softplus": {"3e-u-hat", "3e-planar", "3e-hidden-autograd"},
    "coupling_unconstrained_scale": {"3f-forward", "3f-hidden-odd"},
    "coupling_inverse_logdet_sign": {"3f-inverse", "3f-hidden-odd"},
    "coupling_split_even": {"3f-hidden-odd"},
}
# mistake -> checks of its own task that must still pass (what it gets right earns points)
KEEPS = {
    "maf_permutation_not_inverted": {"3d-log-prob", "3d-train"},
    "coupling_split_even": {"3f-forward", "3f-inverse"},
    "planar_h_not_hprime": {"3e-u-hat"},
}
CORRECT = sorted(p.stem for p in (HERE / "correct").glob("*.py"))


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw3", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for every mistake, every correct variant and the skeleton."""
    return grade_all(hw, ROOT, MASTER, MISTAKES, HERE / "correct",
                     tmp_path_factory.mktemp("hw3_subs"))


def test_every_mistake_is_listed_and_is_one_small_marked_edit(hw):
    assert_mistakes_listed_and_small(hw, MASTER, MISTAKES, CATCHERS)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variant_gets_full_marks(graded, name):
    assert_full_marks(graded[f"correct/{name}"], name)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_wrong_submission_loses_its_task_only(graded, name):
    assert_loses_its_task_only(graded[f"wrong/{name}"], name, MISTAKES[name][0],
                               CATCHERS[name], KEEPS.get(name, set()))


# task -> the student's functions its checks may name (3a's masks call the degrees first)
FUNCTIONS = {"3a": ("made_degrees", "made_masks"), "3b": ("made_forward",),
             "3c": ("made_inverse",), "3d": ("maf_log_prob", "maf_inverse"),
             "3e": ("planar_u_hat", "planar_flow"),
             "3f": ("affine_coupling_forward", "affine_coupling_inverse")}


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(graded):
    assert_skeleton_messages(graded["skeleton"], FUNCTIONS)
