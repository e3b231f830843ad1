"""Shared fixtures of the grading tests: a copy of the fake course and hostile submissions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE_COURSE = HERE / "fixtures" / "course"
SUBMISSIONS = HERE / "submissions"
REPO = HERE.parents[1]


@pytest.fixture
def course(tmp_path) -> Path:
    """A private copy of the fake course (solutions/hw0_fake) that tests may modify."""
    dst = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def copy_submission(name: str, dst_root: Path, student: str | None = None, **replace) -> Path:
    """Copy tests/grading/submissions/<name> to dst_root/<student>, filling placeholders.

    ``replace`` maps a module-level name (e.g. ``TARGETS``) to a Python value
    written in place of its ``NAME = []`` line.
    """
    folder = dst_root / (student or name)
    folder.mkdir(parents=True, exist_ok=True)
    source = SUBMISSIONS / name / "submission.py"
    if not source.is_file():  # stored as .txt when it is not valid Python (ruff parses .py)
        source = source.with_suffix(".txt")
    text = source.read_text()
    for key, value in replace.items():
        assert f"{key} = []" in text, key
        text = text.replace(f"{key} = []", f"{key} = {value!r}", 1)
    (folder / "submission.py").write_text(text)
    return folder
