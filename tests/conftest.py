"""Shared pytest configuration: the gpu marker, which tests share an xdist
worker, and the time reports printed at the end of the run.

Notebooks are executed by nbval (``--nbval-lax`` in pyproject.toml's addopts,
``lectures`` and ``solutions`` in its testpaths): one test item per code cell,
all cells of a notebook in one kernel started in the notebook's folder. A
lecture that the browser suite runs in JupyterLab in the same session is not
run by nbval as well (:class:`RunEachNotebookOnce`).
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict, defaultdict
from pathlib import Path

import matplotlib
import pytest
from suite_plugins import (
    RunEachNotebookOnce,
    is_notebook,
    longest_first,
    modules_with_shared_fixtures,
    recorded_scope_seconds,
    scope_of,
)

matplotlib.use("Agg")

# Notebooks under tests/ are fixtures that the tests open themselves; nbval
# must not execute them (fnmatch's * also matches "/", so this covers subfolders).
collect_ignore_glob = ["*.ipynb"]

NOTEBOOK_BUDGET_SECONDS = 180  # what a lecture may take on a 2-core CPU (see README)
# (notebook, seconds) that tests/browser/test_run_all.py records with record_property
RUN_ALL_PROPERTY = "run_all_seconds"


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:  # nbval's cells, so that `-m "not notebook"` leaves them out
        if is_notebook(str(item.path)):
            item.add_marker(pytest.mark.notebook)

    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, called on the controller
def pytest_xdist_make_scheduler(config, log):
    """With -n, tests that share state stay on one worker (``suite_plugins.scope_of``:
    a notebook's cells, one lecture's Run All in the browser, a file with a module- or
    session-scoped fixture); the rest spread freely, the longest units first.

    This replaces ``--dist loadscope`` (pyproject's addopts), which groups by
    file and so keeps notebooks together even where this conftest is not
    loaded (``pytest -n 2 lectures/``). xdist's own ``--dist loadgroup`` with
    ``xdist_group`` marks would say the same, but it relies on rewriting node
    ids, which pytest 9.2 no longer allows (pytest-dev/pytest-xdist#1386): the
    marks are silently ignored.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    shared = modules_with_shared_fixtures(config.rootpath)
    recorded = recorded_scope_seconds()

    class SharedStateScheduling(LoadScopeScheduling):
        # Units (suite_plugins.scope_of) run whole on one worker. LoadScopeScheduling
        # would start the units with the most tests first; these start the longest
        # first (by the times recorded in tests/scope_seconds.json), so a long lecture
        # does not start last and keep one worker busy while the other idles.
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid, shared)

        def _assign_work_unit(self, node) -> None:
            # the work queue is complete at the first assignment: order it once (the
            # workers' collections keep their order, xdist sends them indices into it)
            if not getattr(self, "_ordered", False):
                sizes = {unit: len(tests) for unit, tests in self.workqueue.items()}
                self.workqueue = OrderedDict(
                    (unit, self.workqueue[unit]) for unit in longest_first(sizes, recorded))
                self._ordered = True
            super()._assign_work_unit(node)

    return SharedStateScheduling(config, log)


def _part(path: str) -> str:
    """The part of the suite a test file belongs to, for the time summary."""
    if is_notebook(path) or path == "tests/test_notebooks.py":
        return "notebooks"
    if path.startswith("tests/browser/"):
        return "browser"
    if path.startswith(("tests/grading/", "tests/homework/", "tests/hw")):
        return "grading"
    if path == "tests/test_style.py":
        return "style"
    return "unit tests"


class RunTimes:
    """Seconds per notebook and per part of the suite, summed over each test's
    setup, call and teardown (a notebook's kernel starts in its first cell's
    setup and stops in its last cell's teardown).

    Everything comes from the test reports: under xdist the controller receives
    every worker's reports, so the same code works with and without ``-n``. The
    seconds per xdist unit go to ``reports/scope_seconds.json`` (or
    ``$COURSEKIT_REPORT_DIR``): after a full run, copy it to tests/ to refresh the
    schedule (``suite_plugins.SCOPE_SECONDS_FILE``).
    """

    def __init__(self, shared: set[str]) -> None:
        self.start = time.perf_counter()
        self.shared = shared
        self.scopes: dict[str, float] = defaultdict(float)
        self.notebooks: dict[str, float] = defaultdict(float)
        self.parts: dict[str, float] = defaultdict(float)
        self.tests: dict[str, int] = defaultdict(int)
        self.run_all: dict[str, float] = {}

    def pytest_runtest_logreport(self, report):
        path = report.nodeid.split("::", 1)[0]
        part = _part(path)
        self.parts[part] += report.duration
        self.scopes[scope_of(report.nodeid, self.shared)] += report.duration
        if report.when == "call":
            self.tests[part] += 1
            for name, value in report.user_properties:
                if name == RUN_ALL_PROPERTY:
                    notebook, seconds = value
                    self.run_all[notebook] = seconds
        if is_notebook(path):
            self.notebooks[path] += report.duration

    def pytest_terminal_summary(self, terminalreporter, config):
        tr = terminalreporter
        self._write_scope_seconds(config)
        if self.notebooks:
            tr.section("notebook wall times")
            _table(tr, self.notebooks, flag_over=NOTEBOOK_BUDGET_SECONDS)
            report_dir = os.environ.get("COURSEKIT_REPORT_DIR")
            if report_dir:
                os.makedirs(report_dir, exist_ok=True)
                with open(os.path.join(report_dir, "notebook_times.md"), "w") as fh:
                    fh.write("| notebook | seconds |\n|---|---|\n")
                    for name, seconds in sorted(self.notebooks.items()):
                        fh.write(f"| {name} | {seconds:.1f} |\n")
        if self.run_all:
            tr.section("browser: Run All Cells wall times")
            _table(tr, self.run_all)
        if self.parts:
            tr.section("seconds per part")
            workers = getattr(config.option, "numprocesses", None) or 1
            for part, seconds in sorted(self.parts.items(), key=lambda kv: -kv[1]):
                tr.write_line(f"{part:<12} {seconds:7.1f} s  ({self.tests[part]} tests)")
            tr.write_line(f"{'sum':<12} {sum(self.parts.values()):7.1f} s  "
                          f"(over {workers} worker{'s' if workers > 1 else ''}; "
                          f"wall {time.perf_counter() - self.start:.1f} s)")

    def _write_scope_seconds(self, config) -> None:
        """The units of more than a second, longest first (the rest are unit tests,
        whose default guess is close enough)."""
        folder = Path(os.environ.get("COURSEKIT_REPORT_DIR") or config.rootpath / "reports")
        slow = {k: round(v, 1) for k, v in sorted(self.scopes.items(), key=lambda kv: -kv[1])
                if v >= 1.0}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "scope_seconds.json").write_text(json.dumps(slow, indent=1) + "\n")


def _table(tr, times: dict[str, float], flag_over: float | None = None) -> None:
    width = max(len(k) for k in times)
    for name, seconds in sorted(times.items()):
        over = flag_over is not None and seconds > flag_over
        flag = f"  (over the {flag_over / 60:g}-minute budget)" if over else ""
        tr.write_line(f"{name:<{width}}  {seconds:7.1f} s{flag}")
    tr.write_line(f"{'total':<{width}}  {sum(times.values()):7.1f} s")


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (then restore the count). For tests of small
    models on a shared CPU, one thread is fastest and does not oversubscribe the cores;
    a module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    Function-scoped on purpose: a module-scoped fixture pins its whole file to one
    xdist worker (suite_plugins.modules_with_shared_fixtures)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _allow_grading_without_isolation() -> None:
    """On a machine whose kernel cannot confine student code (macOS, Windows, Linux
    without Landlock) the grader refuses to run unless told it may: the test suite
    says so, and the tests that need the allow-list skip themselves there."""
    from coursekit.grading import isolation

    if not isolation.available(check_userns=False)["isolated"]:
        os.environ.setdefault(isolation.UNSAFE_ENV, "1")


def pytest_configure(config):
    _allow_grading_without_isolation()
    config.pluginmanager.register(RunEachNotebookOnce(), "coursekit-run-each-notebook-once")
    if not hasattr(config, "workerinput"):  # the reports reach the controller, not workers
        config.pluginmanager.register(RunTimes(modules_with_shared_fixtures(config.rootpath)),
                                      "coursekit-run-times")
