"""Can the browser tests run here? (Shared by tests/browser/ and ``coursekit doctor``.)

The browser tests drive JupyterLab in the system's Chromium through
Playwright's sync API. Playwright's own browser download is never used: the
browser is ``$COURSEKIT_CHROMIUM`` or, by default, ``/usr/bin/chromium``
(Debian/Ubuntu: ``apt-get install chromium``).

This module only uses the standard library, so it can be imported anywhere.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess

DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Flags for a headless Chromium on a machine without network access: the
# background-networking/component-update/sync flags stop Chromium from trying
# to reach Google's servers (those attempts fail and slow it down here).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The browser the tests use: ``$COURSEKIT_CHROMIUM`` or ``/usr/bin/chromium``."""
    return os.environ.get("COURSEKIT_CHROMIUM") or DEFAULT_CHROMIUM


def in_ci() -> bool:
    """True when ``CI`` is set to a true value (``CI=true``, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def browser_status() -> tuple[bool, str]:
    """``(ok, message)``: whether Playwright and the system Chromium are usable.

    Checks, in order: the ``playwright`` Python package is importable; the
    Chromium path exists and is executable; ``chromium --version`` runs and
    exits 0 within 30 s. The message names the browser version when ok, and
    what to do when not.
    """
    if importlib.util.find_spec("playwright") is None:
        return False, ("playwright (Python package) not installed; "
                       "pip install -e '.[test]' installs it (no browser download needed)")
    path = chromium_path()
    if not os.path.isfile(path):
        return False, (f"Chromium not found at {path}; "
                       "set COURSEKIT_CHROMIUM or apt-get install chromium")
    if not os.access(path, os.X_OK):
        return False, f"Chromium at {path} is not executable; set COURSEKIT_CHROMIUM"
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Chromium at {path} does not run ({exc}); set COURSEKIT_CHROMIUM"
    if proc.returncode != 0:
        return False, (f"Chromium at {path} --version exited with {proc.returncode}: "
                       f"{proc.stderr.strip()[-300:]}")
    return True, f"{proc.stdout.strip()} at {path}"
