"""The student distribution of the real course: it starts, its README fits it, its check works.

One distribution is built from this repository (a fresh release of every
homework, about a minute) and shared by the tests of this module.

What is proven about ``python3 course.py lab``: its setup step really runs in
the distribution (``course.py`` creates nothing new here because
``COURSEKIT_VENV`` points at an empty venv that reuses this repository's
packages through a ``.pth`` file; pip runs offline with ``--no-index`` and
without build isolation, so it installs the distribution's ``coursekit``
editable from its ``pyproject.toml``), and the lab step launches JupyterLab from
the distribution's folder, with ``--version`` so that it exits instead of
serving. What is not proven: downloading the dependencies from PyPI, and a
browser session.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from coursekit.grading.release import student_dist

from .conftest import REPO

pytestmark = pytest.mark.slow
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    return student_dist(tmp_path_factory.mktemp("student") / "dist", root=REPO)


def markdown_texts(dist: Path) -> dict[Path, str]:
    """Every shipped Markdown text: ``*.md`` files and notebooks' Markdown cells."""
    texts = {p: p.read_text(encoding="utf-8") for p in dist.rglob("*.md")}
    for notebook in dist.rglob("*.ipynb"):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        texts[notebook] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return texts


def test_every_relative_link_resolves_to_a_shipped_file(dist):
    texts = markdown_texts(dist)
    assert dist / "README.md" in texts
    checked, broken = 0, []
    for path, text in texts.items():
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # web links and anchors
            checked += 1
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(dist)} -> {target}")
    assert not broken, f"links to files the students do not have: {broken}"
    assert checked >= 5  # the README links its lectures, homework and licence


def test_readme_is_written_for_students(dist):
    readme = (dist / "README.md").read_text(encoding="utf-8")
    for needed in (
        "python3 course.py lab",
        "coursekit check hw1",
        "coursekit check hw2",
        "submission.py",
        "LICENSE",
    ):
        assert needed in readme, needed
    for absent in ("course.py test", "instructor", "solutions/", "docs/", "tools/"):
        assert absent not in readme, absent
    assert (dist / "LICENSE").read_text().startswith("MIT License")
    assert (dist / "course.py").read_bytes() == (REPO / "course.py").read_bytes()


def test_first_command_sets_up_the_distribution_and_check_finds_the_homework(dist, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    code = "import site; print(site.getsitepackages()[0])"
    packages = Path(
        subprocess.check_output([str(env_dir / "bin" / "python"), "-c", code], text=True).strip()
    )
    (packages / "reuse_course_venv.pth").write_text(site.getsitepackages()[0] + "\n")
    env = dict(
        os.environ,
        COURSEKIT_VENV=str(env_dir),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of "no build isolation"
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    lab = subprocess.run(
        [sys.executable, "course.py", "lab", "--", "--version"],
        cwd=dist,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert lab.returncode == 0, lab.stdout + lab.stderr
    assert "installing coursekit with extras [lab]" in lab.stdout
    assert "keeping the installed torch" in lab.stdout  # never a second torch download
    assert "opening JupyterLab" in lab.stdout
    assert re.search(r"^\d+\.\d+", lab.stdout.splitlines()[-1]), lab.stdout  # lab's version
    where = subprocess.check_output(
        [str(env_dir / "bin" / "python"), "-c", "import coursekit; print(coursekit.__file__)"],
        cwd=tmp_path,
        text=True,
    )
    assert Path(where.strip()).resolve() == (dist / "coursekit" / "__init__.py").resolve()
    check = subprocess.run(
        [str(env_dir / "bin" / "coursekit"), "check", "hw1"],
        cwd=dist / "homework",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    assert re.match(r"hw1: 0 / \d+ points", check.stdout), check.stdout
    assert "NotImplementedError" in check.stdout and "Traceback" not in check.stderr
