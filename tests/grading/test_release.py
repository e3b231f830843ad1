"""Release: solution regions stripped, hidden checks left out, deterministic, nothing leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.grading.reference import ReplayReference
from coursekit.grading.release import (
    MANIFEST,
    release,
    solution_regions,
    strip_solutions,
    student_dist,
)

from .conftest import REPO

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
        MANIFEST,
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
    (course / "course.py").write_text("print('open the course')\n")
    (course / "README.md").write_text("The instructors' README: see [docs](docs/grading.md)\n")
    dist = student_dist(tmp_path / "dist", root=course)
    files = tree(dist)
    assert "homework/hw0_fake/submission.py" in files
    assert "lectures/01_intro.ipynb" in files and "pyproject.toml" in files
    assert files["course.py"] == b"print('open the course')\n"
    assert "instructors" not in files["README.md"].decode()
    assert "coursekit check hw0" in files["README.md"].decode()
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
    with pytest.raises(ValueError, match="--student-dist: expected an empty or new folder, got"):
        student_dist(dist, root=course)


def test_student_dist_needs_the_first_command(course, tmp_path):
    (course / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match="--student-dist: expected course.py in .*, got none"):
        student_dist(tmp_path / "dist", root=course)
    assert not (tmp_path / "dist").exists()


def test_release_keeps_a_students_changes_unless_forced(course, tmp_path, capsys):
    (course / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (course / "course.py").write_text("print('open the course')\n")
    assert main(["release", "hw0", "--root", str(course)]) == 0
    folder = course / "homework" / "hw0_fake"
    assert "released hw0_fake: 6 files" in capsys.readouterr().out
    assert main(["release", "hw0", "--root", str(course)]) == 0  # unchanged: no complaint
    capsys.readouterr()
    sub, notes = folder / "submission.py", folder / "notes.txt"
    sub.write_text(sub.read_text() + "# my work\n")
    notes.write_text("mine")
    for extra in ([], ["--student-dist", str(tmp_path / "dist")]):
        code = main(["release", "hw0", "--root", str(course), *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert (
            "coursekit release: error: homework/hw0_fake: expected no changes since the last "
            "release, got changes in notes.txt, submission.py. Nothing was written" in err
        )
        assert "--force" in err
        assert sub.read_text().endswith("# my work\n") and notes.read_text() == "mine"
    assert not (tmp_path / "dist").exists()
    assert main(["release", "hw0", "--root", str(course), "--force"]) == 0
    assert "# my work" not in sub.read_text() and not notes.exists()


def test_release_without_a_manifest_keeps_what_differs(course):
    folder = release(["hw0"], root=course)[0]
    (folder / MANIFEST).unlink()  # a copy released before manifests existed
    release(["hw0"], root=course)  # nothing differs from a fresh release: fine
    (folder / MANIFEST).unlink()
    (folder / "homework.json").write_text("{}")
    with pytest.raises(ValueError, match="got changes in homework.json"):
        release(["hw0"], root=course)
    assert (folder / "homework.json").read_text() == "{}"


def test_release_help_says_what_it_overwrites(capsys):
    with pytest.raises(SystemExit):
        main(["release", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "overwrites homework/<slug>/" in out and "--force" in out
    assert "coursekit release hw1" in out  # an example


def test_committed_homework_has_a_manifest():
    for folder in sorted((REPO / "solutions").glob("hw*/")):
        manifest = json.loads((REPO / "homework" / folder.name / MANIFEST).read_text())
        assert "submission.py" in manifest["files"], folder.name


def test_a_release_in_progress_is_not_a_homework(tmp_path):
    from coursekit.grading.homework import list_homeworks

    for folder in ("solutions/hw1_probability", "homework/hw1_probability",
                   "homework/hw1_probability.releasing"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "homework.json").write_text("{}")
    assert list_homeworks(tmp_path) == ["hw1_probability"]
