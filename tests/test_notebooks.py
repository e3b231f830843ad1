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


@pytest.mark.parametrize("path", STORED, ids=_rel)
def test_notebook_text_has_no_control_characters(path):
    # a "\a" or "\b" in a non-raw Python string that generated a cell turns "\approx"
    # or "\beta" into a bell or backspace character, and the formula silently breaks
    nb = json.loads(path.read_text())
    bad = [(i, repr(ch)) for i, c in enumerate(nb["cells"]) for ch in "".join(c["source"])
           if ord(ch) < 32 and ch not in "\n\t\r"]
    assert not bad, f"{_rel(path)}: control characters (cell, char): {bad[:5]}"


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



class _Item:
    """Just what conftest.RunEachNotebookOnce reads of a collected test item."""

    def __init__(self, nodeid: str, nb: Path | None = None):
        self.nodeid, self.path = nodeid, ROOT / nodeid.split("::")[0]
        if nb is not None:
            self.callspec = type("CallSpec", (), {"params": {"nb": nb}})()


class _Hook:
    def __init__(self):
        self.deselected = []

    def pytest_deselected(self, items):
        self.deselected += items


@pytest.mark.parametrize("browser_works", [True, False])
def test_a_lecture_runs_once_in_the_browser_or_else_in_nbval(monkeypatch, browser_works):
    from suite_plugins import RunEachNotebookOnce

    from coursekit import browser_env

    monkeypatch.setattr(browser_env, "browser_status", lambda: (browser_works, "stub"))
    monkeypatch.setattr(browser_env, "in_ci", lambda: False)
    lecture, other = ROOT / "lectures/00_introduction.ipynb", ROOT / "lectures/01_x.ipynb"
    cells = [_Item(f"{_rel(lecture)}::Cell {i}") for i in range(3)]
    kept = [_Item(f"{_rel(other)}::Cell 0"), _Item("tests/test_x.py::test_y")]
    browser = _Item(f"tests/browser/test_run_all.py::test_run_all_cells[{_rel(lecture)}]", lecture)
    items = cells + kept + [browser]
    config = type("Config", (), {"hook": _Hook()})()
    RunEachNotebookOnce().pytest_collection_modifyitems(config, items)
    if browser_works:  # the browser runs lecture 00; nbval runs the rest
        assert items == kept + [browser] and config.hook.deselected == cells
    else:
        assert items == cells + kept + [browser] and config.hook.deselected == []
    # the browser tests deselected (-m "not browser"): nbval runs every lecture
    items = cells + kept
    RunEachNotebookOnce().pytest_collection_modifyitems(config, items)
    assert items == cells + kept
