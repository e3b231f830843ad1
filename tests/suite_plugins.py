"""Pieces of the suite's configuration that tests also import (tests/conftest.py
registers them). They live here, not in conftest.py: pytest imports every
conftest.py as a top-level module named ``conftest``, so ``from conftest import``
in a test can get tests/browser/conftest.py instead."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


def run_by_browser(items) -> set[str]:
    """Notebooks that tests/browser/test_run_all.py runs in this session, where its
    browser works (under CI it must: there a missing browser fails those tests)."""
    paths = {str(item.callspec.params["nb"].resolve()) for item in items
             if item.nodeid.startswith("tests/browser/test_run_all.py::")
             and hasattr(item, "callspec") and "nb" in item.callspec.params}
    if not paths:
        return set()
    from coursekit import browser_env

    return paths if browser_env.in_ci() or browser_env.browser_status()[0] else set()


class RunEachNotebookOnce:
    """A lecture that the browser suite runs (Run All Cells in JupyterLab, every
    error output checked, then every app driven) is not also run by nbval: its
    cells are deselected, so each lecture executes once per test run. Without a
    browser, or with the browser tests deselected (``-m "not browser"``, ``-k``,
    ``pytest lectures/``), nbval runs it as before."""

    @pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they will
    def pytest_collection_modifyitems(self, config, items):
        by_browser = run_by_browser(items)
        if not by_browser:
            return
        dropped = [item for item in items
                   if is_notebook(str(item.path)) and str(item.path.resolve()) in by_browser]
        if dropped:
            keep = set(map(id, dropped))
            items[:] = [item for item in items if id(item) not in keep]
            config.hook.pytest_deselected(items=dropped)


SHARED_FIXTURE = re.compile(r"@pytest\.fixture\([^)]*scope=[\"'](module|session)[\"']")


@functools.cache  # the scheduler and the time report both ask, on the controller
def modules_with_shared_fixtures(root) -> set[str]:
    """Test files (relative paths) that define a module- or session-scoped fixture.

    Their tests run on one worker: split over two, each worker builds the fixture
    (hw2's graded batch, the student distribution, ...) and the work is done twice."""
    found = set()
    for path in sorted((root / "tests").rglob("test_*.py")):
        if SHARED_FIXTURE.search(path.read_text(encoding="utf-8")):
            found.add(path.relative_to(root).as_posix())
    return found


RUN_ALL_FILE = "tests/browser/test_run_all.py"


def scope_of(nodeid: str, shared: set[str]) -> str:
    """The xdist work unit of a test: the tests of one unit run on one worker, in order.

    * A notebook's cells share one kernel: the notebook is one unit.
    * Each lecture's Run All in the browser is a unit of its own, so that the
      heaviest lectures spread over the workers (each worker that runs browser
      tests starts its own JupyterLab server and Chromium, once).
    * The rest of tests/browser/ (the fixture notebooks' widgets) is one unit.
    * A test file with a module- or session-scoped fixture is one unit (its
      fixture is built once).
    * Any other test is a unit by itself.
    """
    path = nodeid.split("::", 1)[0]
    if is_notebook(path):
        return path
    if path == RUN_ALL_FILE:
        return nodeid
    if path.startswith("tests/browser/"):
        return "tests/browser"
    if path in shared:
        return path
    return nodeid


# Seconds each unit took in a full run of the suite on the 2-core CI machine
# (setup + call + teardown, summed), as tests/conftest.py writes them to
# reports/scope_seconds.json at the end of every run; copy that file here after a
# full run to refresh the schedule. Stale numbers only change the order of work.
SCOPE_SECONDS_FILE = Path(__file__).with_name("scope_seconds.json")
# guesses for units that no recorded run has seen yet: new lectures and notebooks
# are heavy, so they start early
UNRECORDED_SECONDS = {"run_all": 120.0, "notebook": 60.0, "shared": 30.0, "test": 0.3}


def expected_seconds(scope: str, tests: int, recorded: dict[str, float]) -> float:
    """How long unit ``scope`` (of ``tests`` tests) is expected to take."""
    if scope in recorded:
        return recorded[scope]
    if scope.startswith(RUN_ALL_FILE):
        return UNRECORDED_SECONDS["run_all"]
    if is_notebook(scope):
        return UNRECORDED_SECONDS["notebook"]
    if "::" not in scope:  # a whole file or tests/browser
        return UNRECORDED_SECONDS["shared"]
    return UNRECORDED_SECONDS["test"] * tests


def recorded_scope_seconds(path: Path = SCOPE_SECONDS_FILE) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def longest_first(units: dict[str, int], recorded: dict[str, float]) -> list[str]:
    """The units (name -> number of tests), those expected to take longest first
    (longest-processing-time-first: on two workers it leaves the least idle time at
    the end)."""
    return sorted(units, key=lambda u: -expected_seconds(u, units[u], recorded))
