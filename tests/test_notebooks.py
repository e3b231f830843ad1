"""Every committed notebook is stored clean, and the suite executes the right ones.

The notebooks themselves are executed by nbval, not here: pyproject.toml's
testpaths name lectures/ and solutions/ and its addopts turn on
``--nbval-lax`` (each cell must run without error; outputs are not compared)
with a per-cell hang guard. Wall times are printed in the "notebook wall
times" section at the end of the run (see conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted((ROOT / "lectures").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*/*.ipynb")
)
STORED = EXECUTED + sorted((ROOT / "homework").glob("*/*.ipynb"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", STORED, ids=_rel)
def test_notebook_stored_clean(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, (f"{_rel(path)} has outputs or execution counts in cells {dirty}; "
                       "run `python tools/notebooks.py strip` before committing")


def test_there_are_notebooks_to_run():
    assert EXECUTED, "no notebooks found under lectures/ or solutions/"


def test_pytest_executes_lectures_and_solutions(pytestconfig):
    """Plain `pytest` (so `course.py test` and CI) runs nbval on lectures/ and
    solutions/, and never on homework/, whose skeletons raise NotImplementedError."""
    paths = pytestconfig.getini("testpaths")
    assert "lectures" in paths and "solutions" in paths, paths
    assert not any(p.startswith("homework") for p in paths), paths
    addopts = pytestconfig.getini("addopts")
    assert "--nbval-lax" in addopts and any(
        a.startswith("--nbval-cell-timeout") for a in addopts), addopts
