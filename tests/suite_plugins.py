"""Pieces of the suite's configuration that tests also import (tests/conftest.py
registers them). They live here, not in conftest.py: pytest imports every
conftest.py as a top-level module named ``conftest``, so ``from conftest import``
in a test can get tests/browser/conftest.py instead."""

from __future__ import annotations

import re

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


def modules_with_shared_fixtures(root) -> set[str]:
    """Test files (relative paths) that define a module- or session-scoped fixture.

    Their tests run on one worker: split over two, each worker builds the fixture
    (hw2's graded batch, the student distribution, ...) and the work is done twice."""
    found = set()
    for path in sorted((root / "tests").rglob("test_*.py")):
        if SHARED_FIXTURE.search(path.read_text(encoding="utf-8")):
            found.add(path.relative_to(root).as_posix())
    return found
