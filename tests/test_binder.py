"""binder/: the repo2docker description (Binder, JupyterHub) stays in step with pyproject.toml.

repo2docker cannot run here (it needs Docker and the network), so this checks
what its Python build pack reads: ``binder/requirements.txt`` is installed with
pip from the repository's root, and a local reference (``-e .``) makes
repo2docker copy the whole repository first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lines() -> list[str]:
    text = (BINDER / "requirements.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and
            not line.strip().startswith("#")]


def test_requirements_install_coursekit_itself_with_the_lab_extra():
    project = _pyproject()
    local = [line for line in _lines() if line.startswith("-e ")]
    assert len(local) == 1, _lines()
    extras = re.fullmatch(r"-e \.\[([a-z,]+)\]", local[0])
    assert extras, local[0]
    chosen = set(extras.group(1).split(","))
    assert "lab" in chosen and chosen <= set(project["optional-dependencies"])
    # what the lectures need in the server's environment: JupyterLab and the widgets
    names = {Requirement(r).name for r in project["dependencies"]}
    names |= {Requirement(r).name for e in chosen for r in project["optional-dependencies"][e]}
    assert {"jupyterlab", "ipykernel", "ipywidgets", "torch"} <= names


def test_nothing_is_pinned_apart_from_pyproject_and_torch_comes_from_the_cpu_index():
    project = _pyproject()
    declared = {Requirement(r).name: str(Requirement(r).specifier)
                for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared.update({Requirement(r).name: str(Requirement(r).specifier) for r in extra})
    options = [line for line in _lines() if line.startswith("--")]
    assert options == [f"--extra-index-url {CPU_INDEX}"]
    for line in _lines():
        if line.startswith(("-e ", "--")):
            continue
        req = Requirement(line)  # any extra line must say exactly what pyproject.toml says
        assert declared.get(req.name) == str(req.specifier), (line, declared.get(req.name))


def test_one_python_so_the_widget_extension_sits_next_to_jupyterlab():
    # a runtime.txt or environment.yml would give the kernel its own environment,
    # leaving jupyterlab_widgets out of the server's and the widgets blank
    for name in ("runtime.txt", "environment.yml", "Pipfile"):
        assert not (BINDER / name).exists(), name


def test_the_readme_documents_the_launch_link_to_the_first_lecture():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/\S+?\?urlpath=lab/tree/(\S+?)[)`\s]", readme)
    assert links, "README.md: no Binder link"
    for path in links:
        assert (ROOT / path).is_file(), path
    assert "repo2docker" in readme and "binder/requirements.txt" in readme
