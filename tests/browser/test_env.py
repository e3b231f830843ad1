"""The browser suite's own plumbing, checked without a browser: the
skip-locally / fail-under-CI contract, browser_status, notebook discovery."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import catalog
import pytest

from coursekit import browser_env as env

MISSING = "/nonexistent/chromium"
TARGET = "tests/browser/test_widgets.py::test_toy_density_explorer"


def _fake_browser(tmp_path, body: str) -> str:
    path = tmp_path / "chromium"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_status_missing_browser(monkeypatch):
    monkeypatch.setenv("COURSEKIT_CHROMIUM", MISSING)
    ok, message = env.browser_status()
    if not ok and message.startswith("playwright"):
        pytest.skip(message)  # the package check comes first; covered under CI
    assert not ok
    assert message == (f"Chromium not found at {MISSING}; "
                       "set COURSEKIT_CHROMIUM or apt-get install chromium")


@pytest.mark.skipif(os.name == "nt", reason="uses a shell script as a fake browser")
def test_status_runs_the_browser(monkeypatch, tmp_path):
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright not installed (browser_status stops at that check)")
    monkeypatch.setenv("COURSEKIT_CHROMIUM", _fake_browser(tmp_path, "echo 'Chromium 1.2.3'"))
    ok, message = env.browser_status()
    assert ok and message.startswith("Chromium 1.2.3 at ")
    monkeypatch.setenv("COURSEKIT_CHROMIUM", _fake_browser(tmp_path, "echo broken >&2; exit 3"))
    ok, message = env.browser_status()
    assert not ok and "exited with 3" in message and "broken" in message


@pytest.mark.slow
@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_browser_skips_locally_fails_under_ci(ci):
    child = dict(os.environ, COURSEKIT_CHROMIUM=MISSING, CI=ci)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-p", "no:cacheprovider", "-rs", "-q"],
        cwd=catalog.ROOT, env=child, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if ci:
        assert proc.returncode == 1, out
        assert "browser tests cannot run under CI" in out, out
    else:
        assert proc.returncode == 0, out
        assert "1 skipped" in out and f"Chromium not found at {MISSING}" in out, out


def test_run_all_never_empty():
    nbs = catalog.run_all_notebooks()
    assert nbs, "the Run All Cells test would have nothing to run"
    assert catalog.lecture_notebooks() == [] or nbs == catalog.lecture_notebooks()
    assert catalog.FIXTURES / "toy_density.ipynb" in catalog.widget_notebooks()


def test_constructor_calls(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('%matplotlib inline\napp = Explorer("a", n=3)\n'
                                          "Explorer(seed=x).show()\nmod.Explorer(rho=0.5)")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    calls = catalog.constructor_calls(path, "Explorer")
    assert len(calls) == 2 and {0: "a", "n": 3} in calls and {"rho": 0.5} in calls
