"""Every lecture notebook, run top to bottom in JupyterLab (Run > Run All Cells),
shows no error output and no browser console error; then every control of
every coursekit app it shows is changed and checked (drive.py), in the same
session, so each lecture runs once in the browser."""

from __future__ import annotations

import catalog
import drive
import jlab
import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("nb", catalog.run_all_notebooks(),
                         ids=[catalog.served_path(nb) for nb in catalog.run_all_notebooks()])
def test_run_all_cells(lab, nb, record_property):
    path = catalog.served_path(nb)
    lab.open(path)
    seconds = lab.run_all(timeout=jlab.RUN_ALL_TIMEOUT)
    # printed in "browser: Run All Cells wall times" at the end of the run (tests/conftest.py)
    record_property("run_all_seconds", (path, seconds))
    lab.assert_no_errors()
    n_code = len(catalog.code_cells(nb))
    prompts = lab.page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert len(prompts) == n_code, f"{len(prompts)} code cells shown, {n_code} in the file"
    collapsed = catalog.collapsed_code_cells(nb)
    not_run = [i for i, p in enumerate(prompts)
               if not any(ch.isdigit() for ch in p) and i not in collapsed]
    assert not not_run, f"code cells {not_run} did not run (prompts {prompts})"
    # a collapsed cell shows no prompt: it ran if it printed (the worked answers print
    # the result of their check)
    cells = lab.page.locator(".jp-NotebookPanel .jp-CodeCell")
    silent = [i for i in sorted(collapsed)
              if not "".join(cells.nth(i).locator(".jp-OutputArea-output").all_inner_texts())
              .strip()]
    assert not silent, f"collapsed code cells {silent} show no output: did they run?"
    lab.assert_no_console_errors()
    if catalog.uses_widgets(nb):
        assert lab.apps().count() > 0, "the notebook uses coursekit.widgets but shows no app"
        drive.exercise_every_app(lab, nb)
