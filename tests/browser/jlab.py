"""A small driver for JupyterLab 4 in Playwright (sync API), used by the browser tests.

It works through what a student sees (the Run menu, the widgets' sliders,
dropdowns, checkboxes and buttons) and reads state from the page. The server
runs with ``--LabApp.expose_app_in_browser=True`` so the driver can ask
``window.jupyterapp`` for the kernel status and the notebook model (error
outputs), which is more reliable than scraping the status bar.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

# Hang guards (seconds). They only stop a stuck test; they are not performance limits.
OPEN_TIMEOUT = 180
RUN_ALL_TIMEOUT = 360
WIDGET_TIMEOUT = 120
# Once the kernel is idle every message it sent has reached the page; this
# only covers the browser re-rendering.
SETTLED_TIMEOUT = 30

# Console errors that are not course problems, as regexes matched against
# "type: text (url:line)". Only "error" messages and uncaught exceptions
# ("pageerror") count; JupyterLab's debug/info/warning chatter is ignored.
# With JupyterLab 4.6.6 and Chromium 156 a clean run logs no error at all, so
# this list is empty: add an entry only for noise you have seen, with a comment.
BENIGN_CONSOLE: list[re.Pattern] = []

TRACEBACK_RE = re.compile(
    r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b.*$", re.MULTILINE)

_FIND_PANEL = """
const findPanel = (path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
};
"""

_JS_KERNEL_STATE = _FIND_PANEL + """
(path) => {
  const w = findPanel(path);
  if (!w) return 'no-panel';
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? k.status : 'no-kernel';
}
"""

# 'done' when the kernel is idle, no cell is queued or running ([*]) and the
# first code cell has run; 'dead' when the kernel died; else false.
_JS_RUN_DONE = _FIND_PANEL + """
(path) => {
  const w = findPanel(path);
  if (!w) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k) return false;
  if (k.status === 'dead') return 'dead';
  if (k.status !== 'idle') return false;
  const prompts = Array.from(w.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
    .map(e => e.textContent.trim());
  if (prompts.length === 0) return 'done';
  if (prompts.some(p => p.includes('*'))) return false;
  return /\\[\\d+\\]/.test(prompts[0]) ? 'done' : false;
}
"""

_JS_ERRORS = _FIND_PANEL + """
([path, pattern]) => {
  const w = findPanel(path);
  if (!w) return ['notebook panel for ' + path + ' not found'];
  const found = [];
  const nb = w.content.model.toJSON();
  nb.cells.forEach((cell, i) => (cell.outputs || []).forEach(o => {
    if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }));
  const re = new RegExp(pattern, 'm');
  for (const el of w.node.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const text = el.innerText || el.textContent || '';
    if (re.test(text)) found.push('error output shown: ' + text.trim().slice(0, 1500));
  }
  return found;
}
"""

# The controls of an app: every input widget in the .coursekit-app container
# except anything inside its output area.
CONTROL_SELECTOR = ", ".join(
    f"{s}:not(.widget-output *)" for s in (
        ".widget-slider", ".widget-dropdown", ".widget-checkbox", ".widget-button",
        ".widget-toggle-buttons", ".widget-radio", ".widget-text"))

# Describe the controls of one .coursekit-app element, in page order.
_JS_CONTROLS = """
(app, sel) => {
  const out = [];
  const label = (el) => { const l = el.querySelector(':scope > .widget-label');
                          return l ? l.textContent.trim() : ''; };
  for (const el of app.querySelectorAll(sel)) {
    const disabled = !!el.querySelector(':disabled') || el.matches(':disabled')
      || !!el.querySelector('[disabled]');
    if (el.matches('.widget-slider')) {
      const h = el.querySelector('.noUi-handle');
      const readout = el.querySelector('.widget-readout');
      out.push({kind: 'slider', label: label(el),
                value: parseFloat(h.getAttribute('aria-valuenow')),
                min: parseFloat(h.getAttribute('aria-valuemin')),
                max: parseFloat(h.getAttribute('aria-valuemax')),
                readout: readout ? readout.textContent.trim() : '', disabled});
    } else if (el.matches('.widget-dropdown')) {
      const s = el.querySelector('select');
      out.push({kind: 'dropdown', label: label(el), value: s.value,
                options: Array.from(s.options).map(o => o.value), disabled: s.disabled});
    } else if (el.matches('.widget-checkbox')) {
      const i = el.querySelector('input[type=checkbox]');
      const span = el.querySelector('.widget-label-basic span');
      out.push({kind: 'checkbox', label: span ? span.textContent.trim() : label(el),
                value: i.checked, disabled: i.disabled});
    } else if (el.matches('.widget-text')) {
      const i = el.querySelector('input');
      out.push({kind: 'text', label: label(el), value: i.value, type: i.type,
                min: i.min === '' ? null : parseFloat(i.min),
                max: i.max === '' ? null : parseFloat(i.max),
                step: i.step === '' || i.step === 'any' ? 1 : parseFloat(i.step),
                disabled: i.disabled});
    } else if (el.matches('button.widget-button, .widget-button')) {
      out.push({kind: 'button', label: el.textContent.trim(), value: null,
                disabled: el.disabled});
    } else {
      out.push({kind: 'unsupported:' + el.className, label: label(el), value: null, disabled});
    }
  }
  return out;
}
"""

_JS_IMG_SRC = """
(app) => { const i = app.querySelector('.widget-output img'); return i ? i.src : null; }
"""

_JS_SUMMARY = """
(app) => { const h = app.querySelector('.widget-html-content'); return h ? h.innerHTML : null; }
"""

_JS_NORMALISE_HTML = """
(html) => { const d = document.createElement('div'); d.innerHTML = html; return d.innerHTML; }
"""


class LabError(AssertionError):
    """A check on the JupyterLab page failed."""


class Lab:
    """One browser page on the session's JupyterLab server."""

    def __init__(self, page, base_url: str, token: str, workspace: str):
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.workspace = workspace
        self.console: list[str] = []
        self.path: str | None = None
        self.focus = None  # locator of the element a failure screenshot should show
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    # -- console -------------------------------------------------------------
    def _on_console(self, msg) -> None:
        loc = msg.location or {}
        where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc else ""
        self.console.append(f"{msg.type}: {msg.text}{where}")

    def console_errors(self) -> list[str]:
        """Uncaught exceptions and console errors, minus the documented benign ones."""
        bad = []
        for line in self.console:
            if not (line.startswith("pageerror:") or line.startswith("error:")):
                continue
            if any(p.search(line) for p in BENIGN_CONSOLE):
                continue
            bad.append(line)
        return bad

    def assert_no_console_errors(self) -> None:
        bad = self.console_errors()
        if bad:
            raise LabError("browser console errors:\n" + "\n".join(bad))

    # -- notebook ------------------------------------------------------------
    def open(self, path: str) -> None:
        """Open ``path`` (relative to the server root) in a fresh workspace and
        wait until its kernel is idle (accepting the kernel dialog if one shows)."""
        self.path = path
        url = (f"{self.base_url}/lab/workspaces/{self.workspace}/tree/{quote(path)}"
               f"?reset&token={self.token}")
        self.page.goto(url, timeout=OPEN_TIMEOUT * 1000)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook",
                                    timeout=OPEN_TIMEOUT * 1000)
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            state = self.page.evaluate(_JS_KERNEL_STATE, path)
            if state == "idle":
                return
            if state == "dead":
                raise LabError(f"kernel of {path} died while starting")
            # A notebook without kernel metadata asks which kernel to use.
            dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count() and dialog.first.is_visible():
                dialog.first.click()
            if time.monotonic() > deadline:
                raise LabError(f"kernel of {path} not idle after {OPEN_TIMEOUT} s (state {state})")
            time.sleep(0.25)

    def run_all(self, timeout: float = RUN_ALL_TIMEOUT) -> float:
        """Run > Run All Cells from the menu bar, wait until every cell has run
        (or execution stopped at an error); returns the seconds it took."""
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
        self.page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        self.wait_until_executed(timeout)
        return time.monotonic() - start

    def wait_until_executed(self, timeout: float = RUN_ALL_TIMEOUT) -> None:
        # Poll twice with a pause so a kernel that is idle between two queued
        # cells is not mistaken for a finished run.
        for _ in range(2):
            handle = self.page.wait_for_function(_JS_RUN_DONE, arg=self.path,
                                                 timeout=timeout * 1000, polling=500)
            if handle.json_value() == "dead":
                raise LabError(f"kernel of {self.path} died")
            time.sleep(1.0)

    def wait_kernel_idle(self, settle: float = 0.5, timeout: float = WIDGET_TIMEOUT) -> None:
        """Wait until the kernel has been idle for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while True:
            state = self.page.evaluate(_JS_KERNEL_STATE, self.path)
            if state == "dead":
                raise LabError(f"kernel of {self.path} died")
            now = time.monotonic()
            if state == "idle":
                idle_since = idle_since or now
                if now - idle_since >= settle:
                    return
            else:
                idle_since = None
            if now > deadline:
                raise LabError(f"kernel not idle after {timeout} s (state {state})")
            time.sleep(0.1)

    def errors(self) -> list[str]:
        """Error outputs anywhere in the notebook: error outputs in the model,
        and tracebacks shown as stderr (including inside widget Output areas)."""
        return self.page.evaluate(_JS_ERRORS, [self.path, TRACEBACK_RE.pattern])

    def assert_no_errors(self) -> None:
        found = self.errors()
        if found:
            raise LabError(f"error output in {self.path}:\n" + "\n\n".join(found))

    # -- apps ----------------------------------------------------------------
    def apps(self):
        return self.page.locator(".jp-NotebookPanel .coursekit-app")

    def controls(self, app) -> list[dict]:
        return app.evaluate(_JS_CONTROLS, CONTROL_SELECTOR)

    def img_src(self, app) -> str | None:
        return app.evaluate(_JS_IMG_SRC)

    def summary_html(self, app) -> str | None:
        return app.evaluate(_JS_SUMMARY)

    def normalise_html(self, html: str) -> str:
        return self.page.evaluate(_JS_NORMALISE_HTML, html)

    def control_locator(self, app, index: int):
        return app.locator(CONTROL_SELECTOR).nth(index)

    def change(self, app, index: int, control: dict) -> str:
        """Change control ``index`` the way a student would; returns what was done."""
        loc = self.control_locator(app, index)
        kind = control["kind"]
        if kind == "slider":
            handle = loc.locator(".noUi-handle")
            handle.focus()
            key = "ArrowRight" if control["value"] < control["max"] else "ArrowLeft"
            handle.press(key)
            return f"pressed {key} on slider {control['label']!r}"
        if kind == "dropdown":
            options = control["options"]
            new = options[(options.index(control["value"]) + 1) % len(options)]
            loc.locator("select").select_option(value=new)
            return f"selected {new!r} in dropdown {control['label']!r}"
        if kind == "checkbox":
            loc.locator("input[type=checkbox]").click()
            return f"clicked checkbox {control['label']!r}"
        if kind == "text" and control["type"] == "number":
            value, step = float(control["value"]), control["step"] or 1
            new = value + step
            if control["max"] is not None and new > control["max"]:
                new = value - step
            text = str(int(new)) if float(new).is_integer() else repr(new)
            box = loc.locator("input")
            box.fill(text)
            box.press("Enter")
            box.press("Tab")  # number inputs commit their value on blur
            return f"typed {text} into {control['label']!r}"
        if kind == "button":
            loc.click()
            return f"clicked button {control['label']!r}"
        raise LabError(f"unsupported control {kind} ({control['label']!r}): teach "
                       "tests/browser/jlab.py to drive it")

    def wait_for(self, predicate, what, timeout: float = WIDGET_TIMEOUT, poll: float = 0.2):
        """Poll ``predicate()`` until it returns a truthy value; LabError after
        ``timeout`` (a hang guard). ``what`` is a string, or a callable giving
        the message at the time of failure."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                text = what() if callable(what) else what
                raise LabError(f"timed out after {timeout} s waiting for {text}")
            time.sleep(poll)
