"""Fixtures for the browser tests: one JupyterLab server and one headless
Chromium for the whole session, a fresh page per test, and failure artifacts.

* Under pytest-xdist a session is a worker: each worker that runs browser tests
  starts one server and one browser, once (tests/conftest.py's scheduler gives
  each lecture's Run All to whichever worker is free, and keeps the rest of
  tests/browser/ together).
* No usable browser (see ``coursekit.browser_env.browser_status``): every browser test is
  skipped with the reason, except under CI (``CI=true``), where it fails.
* The server's root is a temporary copy of ``lectures/`` and
  ``tests/browser/fixtures/``: running cells and JupyterLab's autosave never
  touch the committed notebooks. Settings, workspaces and runtime files live
  in the same temporary folder, so a developer's own JupyterLab settings do
  not leak in.
* On a failing test, a screenshot, the browser console log and the server
  log (which holds the kernels' stderr) are saved under
  ``reports/browser/<test>/`` (or ``$COURSEKIT_REPORT_DIR/browser/<test>/``)
  and their paths are printed with the failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import catalog
import jlab
import pytest

from coursekit import browser_env as env

SERVER_START_TIMEOUT = 180  # hang guard, seconds


def report_dir() -> Path:
    base = os.environ.get("COURSEKIT_REPORT_DIR") or str(catalog.ROOT / "reports")
    return Path(base) / "browser"


# -- availability -------------------------------------------------------------
@pytest.fixture(scope="session")
def browser_available() -> str:
    ok, message = env.browser_status()
    if not ok:
        if env.in_ci():
            pytest.fail(f"browser tests cannot run under CI: {message}", pytrace=False)
        pytest.skip(message)
    return message


# -- JupyterLab server ----------------------------------------------------------
@dataclass
class LabServer:
    base_url: str
    token: str
    root: Path
    log_path: Path
    proc: subprocess.Popen

    def api(self, method: str, path: str):
        req = urllib.request.Request(f"{self.base_url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def shutdown_kernels(self) -> None:
        """Delete every session (which shuts its kernel down) to free the CPU."""
        try:
            for session in self.api("GET", "/api/sessions") or []:
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except (urllib.error.URLError, OSError):
            pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_lab_settings(settings: Path) -> None:
    files = {
        # Render every cell (no virtual scrolling), so that the error checks
        # see every output, however long the notebook.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        # No news or update checks (no network here; no toast over the page).
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for rel, content in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture(scope="session")
def lab_server(browser_available, tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    if catalog.LECTURES.is_dir():
        shutil.copytree(catalog.LECTURES, root / "lectures", ignore=ignore)
    if catalog.RESULTS.is_dir():  # recorded benchmark results the lectures read
        shutil.copytree(catalog.RESULTS, root / "benchmarks" / "results", ignore=ignore)
    shutil.copytree(catalog.FIXTURES, root / catalog.FIXTURE_PREFIX, ignore=ignore)
    _write_lab_settings(base / "settings")

    token = secrets.token_hex(16)
    port = _free_port()
    child_env = dict(os.environ)
    child_env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
    )
    # Kernels must use matplotlib's inline backend, as for a student.
    child_env.pop("MPLBACKEND", None)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    log_path = base / "jupyter-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(cmd, cwd=root, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log_path, proc)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}",
                            pytrace=False)
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer /api/status within "
                            f"{SERVER_START_TIMEOUT} s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.5)
        yield server
    finally:
        server.shutdown_kernels()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()
        worker = os.environ.get("PYTEST_XDIST_WORKER")  # each worker runs its own server
        name = f"jupyter-server-{worker}.log" if worker else "jupyter-server.log"
        shutil.copy(log_path, _ensure(report_dir()) / name)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- browser ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser(browser_available):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # browser_status checked the package; be explicit anyway
        pytest.fail(f"playwright does not import: {exc}", pytrace=False)
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=env.chromium_path(), args=env.CHROMIUM_ARGS,
                               headless=True)
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture
def lab(request, lab_server, browser):
    """A fresh browser page on the session's JupyterLab (its own workspace)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(jlab.WIDGET_TIMEOUT * 1000)
    page = context.new_page()
    workspace = "t-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    driver = jlab.Lab(page, lab_server.base_url, lab_server.token, workspace)
    driver.server = lab_server
    yield driver
    context.close()
    lab_server.shutdown_kernels()


# -- failure artifacts ------------------------------------------------------------
def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    driver = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
    if driver is None:
        return
    folder = report_dir() / _artifact_name(item.nodeid)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lines = []
    shot = folder / "screenshot.png"
    page = driver.page
    try:  # JupyterLab scrolls inside the notebook: bring the evidence into view
        traceback = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
            has_text="Traceback")
        for target in (traceback, driver.focus, page.locator(".coursekit-app")):
            if target is not None and target.count():
                target.first.scroll_into_view_if_needed(timeout=5_000)
                break
    except Exception:
        pass
    if driver.focus is not None:
        app_shot = folder / "app.png"
        try:
            driver.focus.first.screenshot(path=str(app_shot), timeout=10_000)
            lines.append(f"app:          {app_shot}")
        except Exception as exc:
            lines.append(f"app screenshot failed: {exc}")
    try:
        page.screenshot(path=str(shot), full_page=True, timeout=30_000)
        lines.append(f"screenshot:   {shot}")
    except Exception as exc:  # the page may be gone; still save the logs
        lines.append(f"screenshot failed: {exc}")
    console = folder / "console.log"
    console.write_text("\n".join(driver.console) + "\n")
    lines.append(f"console log:  {console}  ({len(driver.console)} messages)")
    server_log = folder / "jupyter-server.log"
    server_log.write_text(driver.server.log_tail(400) + "\n")
    lines.append(f"server log:   {server_log}  (kernel stderr is here)")
    errors = driver.console_errors()
    if errors:
        lines.append("console errors:\n  " + "\n  ".join(errors[-10:]))
    rep.sections.append(("browser artifacts", "\n".join(lines)))
