"""Release: solution regions stripped, hidden checks left out, deterministic, nothing leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coursekit.grading.reference import ReplayReference
from coursekit.grading.release import (
    release,
    solution_regions,
    strip_solutions,
    student_dist,
)

MASTER = """def f(x):
    ### HINT: square it
    ### BEGIN SOLUTION
    y = x * x
    return y
    ### END SOLUTION


def g(x):
    if x:
        ### BEGIN SOLUTION
        return 1
        ### END SOLUTION
    return 0
"""


def test_strip_solutions_keeps_indentation_and_hint():
    out = strip_solutions(MASTER)
    assert "    raise NotImplementedError('square it')\n" in out
    assert "        raise NotImplementedError('write this function')\n" in out
    assert "x * x" not in out and "### " not in out
    compile(out, "<released>", "exec")
    assert solution_regions(MASTER) == ["    y = x * x\n    return y", "        return 1"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "without a matching"),
        ("x = 1\n### END SOLUTION\n", "without a ### BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
        ("    ### BEGIN SOLUTION\n    x = 1\n### END SOLUTION\n", "indented differently"),
    ],
)
def test_strip_solutions_rejects_broken_markers(text, words):
    with pytest.raises(ValueError, match=words):
        strip_solutions(text, "sub.py")


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_release_fake_homework_is_deterministic_and_complete(course, tmp_path):
    first = release(["hw0"], root=course, out=tmp_path / "a")[0]
    second = release(["hw0"], root=course, out=tmp_path / "b")[0]
    files = tree(first)
    assert files == tree(second)
    assert sorted(files) == [
        "checks/harness.py",
        "checks/public.py",
        "checks/public_expected.json",
        "homework.json",
        "submission.py",
    ]
    sub = files["submission.py"].decode()
    assert "raise NotImplementedError('one line: add the two tensors')" in sub
    assert "zebra-secret" not in sub
    expected = json.loads(files["checks/public_expected.json"])
    assert sorted(expected["checks"]) == ["0a-basic", "0b-basic"]


def test_replayed_reference_equals_live_values(course, tmp_path):
    import numpy as np

    folder = release(["hw0"], root=course, out=tmp_path / "rel")[0]
    replay = ReplayReference(folder / "checks" / "public_expected.json")
    rng = np.random.default_rng(1)  # the seed of check 0a-basic
    a, b = rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_array_equal(replay.call("0a-basic", 0, "add", (a, b), {}, seed=1), a + b)
    from coursekit.grading.checks import CheckFailure

    with pytest.raises(CheckFailure, match="no recorded expected value"):
        replay.call("0a-basic", 0, "add", (a, a), {}, seed=1)


def test_release_refuses_a_reference_that_fails_its_checks(course):
    sub = course / "solutions/hw0_fake/submission.py"
    sub.write_text(sub.read_text().replace("total = a + b", "total = a - b"))
    with pytest.raises(ValueError, match="0a-basic.*fails on the reference solution"):
        release(["hw0"], root=course, out=course / "homework")


def test_student_dist_leaks_nothing(course, tmp_path):
    (course / "lectures").mkdir()
    (course / "lectures" / "01_intro.ipynb").write_text("{}")
    (course / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    dist = student_dist(tmp_path / "dist", root=course)
    files = tree(dist)
    assert "homework/hw0_fake/submission.py" in files
    assert "lectures/01_intro.ipynb" in files and "pyproject.toml" in files
    assert any(name.startswith("coursekit/grading/") for name in files)
    assert not any(name.startswith(("solutions/", "tests/")) for name in files)
    assert not any(name.endswith("hidden.py") for name in files)
    master = course / "solutions/hw0_fake"
    secrets = ["0a-hidden-quokka", "0b-hidden-harness", "zebra-secret"]
    secrets += [r.strip() for r in solution_regions((master / "submission.py").read_text())]
    for name, data in files.items():
        text = data.decode("utf-8", errors="replace")
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into {name}"
    with pytest.raises(ValueError, match="not empty"):
        student_dist(dist, root=course)
