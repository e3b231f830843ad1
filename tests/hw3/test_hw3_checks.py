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
MASTER = ROOT / "solutions" / "hw3_flows"


def _load_mistakes() -> dict:
    # loaded by path: a plain ``import mistakes`` would collide with other homeworks' files
    spec = importlib.util.spec_from_file_location("_hw3_mistakes", HERE / "hw3_mistakes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MISTAKES


MISTAKES = _load_mistakes()
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


def wrong_text(name: str) -> str:
    """The reference solution with mistake ``name`` applied."""
    return apply_mistake((MASTER / "submission.py").read_text(), MISTAKES[name][2], name)


@pytest.fixture(scope="module")
def hw():
    return resolve_homework("hw3", root=ROOT)


@pytest.fixture(scope="module")
def graded(hw, tmp_path_factory):
    """{label: result} for every mistake, every correct variant and the skeleton."""
    folder = tmp_path_factory.mktemp("hw3_subs")
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


# task -> the student's functions its checks may name (3a's masks call the degrees first)
FUNCTIONS = {"3a": ("made_degrees", "made_masks"), "3b": ("made_forward",),
             "3c": ("made_inverse",), "3d": ("maf_log_prob", "maf_inverse"),
             "3e": ("planar_u_hat", "planar_flow"),
             "3f": ("affine_coupling_forward", "affine_coupling_inverse")}


def test_untouched_skeleton_messages_name_the_function_and_show_the_hint_once(graded):
    for c in graded["skeleton"]["checks"]:
        message = c["message"]
        assert c["status"] == "fail", (c["id"], message)
        assert message.startswith(tuple(f"{f} raised NotImplementedError: "
                                        for f in FUNCTIONS[c["task"]])), (c["id"], message)
        assert "harness" not in message, (c["id"], message)
        assert message.count("NotImplementedError") == 1, (c["id"], message)
        assert message.endswith(")") and "submission.py, line " in message, (c["id"], message)
