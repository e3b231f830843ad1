"""A homework's recorded mistakes and correct variants, graded once through the real
pipeline, and the assertions every homework's tests make about them.

``tests/hwN/test_hwN_checks.py`` lists its mistakes (``hwN_mistakes.py``), the checks
that must catch each (``CATCHERS``), what each must keep (``KEEPS``) and the
functions each task's checks name (``FUNCTIONS``); the logic is here, once.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coursekit.grading import grade_submission
from coursekit.grading.homework import load_checks
from coursekit.grading.reference import LiveReference
from coursekit.grading.release import strip_solutions
from homework.mistakes import apply_mistake, assert_one_small_marked_edit


def load_mistakes(path: Path) -> dict:
    """``MISTAKES`` of a homework's mistakes file, loaded by path (a plain ``import
    mistakes`` would collide with other homeworks' files)."""
    spec = importlib.util.spec_from_file_location(f"_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MISTAKES


def wrong_text(master: Path, mistakes: dict, name: str) -> str:
    """The reference solution with mistake ``name`` applied."""
    return apply_mistake((master / "submission.py").read_text(), mistakes[name][2], name)


def grade_all(hw, root: Path, master: Path, mistakes: dict, correct_dir: Path,
              folder: Path) -> dict:
    """``{label: result}`` for every mistake (``wrong/<name>``), every file of
    ``correct_dir`` (``correct/<stem>``) and the untouched skeleton (``skeleton``),
    graded two at a time, each in its own sandbox worker, hidden checks included."""
    paths = {f"correct/{p.stem}": p for p in sorted(correct_dir.glob("*.py"))}
    for name in mistakes:
        (folder / name).mkdir()
        path = folder / name / "submission.py"
        path.write_text(wrong_text(master, mistakes, name))
        paths[f"wrong/{name}"] = path
    (folder / "skeleton").mkdir()
    skeleton = folder / "skeleton" / "submission.py"
    skeleton.write_text(strip_solutions((master / "submission.py").read_text()))
    paths["skeleton"] = skeleton
    specs = load_checks(hw, include_hidden=True)
    reference = LiveReference(hw.master_dir, hw.harness_file())

    def run(item):
        slot, (label, path) = item
        return label, grade_submission(hw, path, root=root, specs=specs, reference=reference,
                                       slot=slot)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, [(i % 2, item) for i, item in enumerate(paths.items())]))
    for label, result in results.items():
        bad = [(c["id"], c["message"]) for c in result["checks"] if c["status"] == "error"]
        assert not bad, f"{label}: checks errored (a bug in a check or a crashed worker): {bad}"
    return results


def by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def assert_mistakes_listed_and_small(hw, master: Path, mistakes: dict, catchers: dict) -> None:
    """Every mistake has catchers that exist, and is one small edit marked MISTAKE."""
    assert sorted(mistakes) == sorted(catchers)
    specs = load_checks(hw, include_hidden=True)
    assert {s.id for s in specs} >= set().union(*catchers.values())
    reference = (master / "submission.py").read_text()
    for name in mistakes:
        assert_one_small_marked_edit(reference, wrong_text(master, mistakes, name), name,
                                     max_lines=4)


def assert_full_marks(result: dict, name: str) -> None:
    failed = [(c["id"], c["message"]) for c in result["checks"] if c["status"] != "pass"]
    assert not failed, f"{name} is correct but lost points: {failed}"
    assert result["score"] == result["max_score"]


def assert_loses_its_task_only(result: dict, name: str, task: str, catchers: set,
                               keeps: set) -> None:
    """The catchers fail with a message and score 0; no other task loses a point; the
    checks in ``keeps`` (what the mistake gets right) pass; the task loses points."""
    checks = by_id(result)
    for check_id in sorted(catchers):
        assert checks[check_id]["task"] == task
        assert checks[check_id]["status"] == "fail", f"{name}: {check_id} should catch it"
        assert checks[check_id]["score"] == 0
        assert checks[check_id]["message"], "a failing check must tell the student why"
    others = [(c["id"], c["message"]) for c in checks.values()
              if c["task"] != task and c["status"] != "pass"]
    assert not others, f"{name} breaks task {task}, yet lost points elsewhere: {others}"
    kept = [(i, checks[i]["message"]) for i in sorted(keeps) if checks[i]["status"] != "pass"]
    assert not kept, f"{name}: what it gets right must keep its points: {kept}"
    in_task = [c for c in checks.values() if c["task"] == task]
    assert sum(c["score"] for c in in_task) < sum(c["max_score"] for c in in_task)


def assert_skeleton_messages(result: dict, functions: dict) -> None:
    """Every check of the untouched skeleton fails, naming the student's function
    (``functions[task]``, not the harness) and showing the hint once."""
    for c in result["checks"]:
        message = c["message"]
        assert c["status"] == "fail", (c["id"], message)
        assert message.startswith(tuple(f"{f} raised NotImplementedError: "
                                        for f in functions[c["task"]])), (c["id"], message)
        assert "harness" not in message, (c["id"], message)
        assert message.count("NotImplementedError") == 1, (c["id"], message)
        assert message.endswith(")") and "submission.py, line " in message, (c["id"], message)
