"""``coursekit doctor``: what this machine has, in one screen.

Prints the Python and torch versions, the device ``get_device("auto")``
picks, whether the embedded data loads, and which optional pieces are
present (JupyterLab, the browser for UI tests, a cached MNIST, the grading
sandbox's isolation: Landlock, see ``coursekit.grading.isolation``). Returns 0 when
everything the course needs works (optional pieces may be missing), 1 otherwise.
"""

from __future__ import annotations

import importlib.util
import platform
import sys

from coursekit.runtime import TORCH_CPU_INDEX

OK, MISSING, WARN, FAIL = "ok", "missing", "warn", "FAIL"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def torch_build_row(torch) -> tuple[str, str, str]:
    """The torch row: a warning for a CUDA build on a machine where CUDA is unusable
    (gigabytes of NVIDIA libraries that only cost disk space and import time)."""
    cuda = getattr(torch.version, "cuda", None)
    if cuda and not torch.cuda.is_available():
        return ("torch", WARN,
                f"{torch.__version__} is a CUDA {cuda} build but no usable NVIDIA GPU was "
                f"found; the CPU build is ~3 GB smaller: .venv/bin/pip install "
                f"--force-reinstall torch --index-url {TORCH_CPU_INDEX}")
    build = f"CUDA {cuda}" if cuda else "CPU build"
    return ("torch", OK, f"{torch.__version__} ({build})")


def collect() -> list[tuple[str, str, str]]:
    """Rows ``(item, status, detail)``; status is ok / missing / FAIL."""
    rows = [("python", OK, f"{platform.python_version()} ({sys.executable})")]
    try:
        import torch

        rows.append(torch_build_row(torch))
    except Exception as err:  # torch missing or broken: nothing else works
        return rows + [("torch", FAIL, f"cannot import torch: {err}")]
    from coursekit.runtime import available_devices, get_device

    rows.append(("device", OK, f"auto -> {get_device('auto')} (available: "
                               f"{', '.join(available_devices())})"))
    try:
        from coursekit.data import load_digits, toy2d

        x, _ = load_digits("train")
        pts = toy2d("moons", 10, seed=0)
        rows.append(("embedded data", OK, f"digits train {tuple(x.shape)}, toy2d moons "
                                          f"{tuple(pts.shape)}"))
    except Exception as err:
        rows.append(("embedded data", FAIL, f"{type(err).__name__}: {err}"))
    for module, label, purpose in (
        ("jupyterlab", "jupyterlab", "needed to open the lectures"),
        ("ipywidgets", "ipywidgets", "needed for the interactive apps"),
        ("pytest", "pytest", "test extra"),
        ("playwright", "playwright", "browser tests"),
    ):
        rows.append((label, OK if _has(module) else MISSING, purpose))
    from coursekit.browser_env import browser_status

    browser_ok, browser_message = browser_status()
    if not browser_ok:
        browser_message += "; browser tests are skipped (under CI=true they fail instead)"
    rows.append(("chromium", OK if browser_ok else MISSING, browser_message))
    from coursekit.grading.isolation import doctor_row

    isolated, isolation_detail = doctor_row()
    rows.append(("grading isolation", OK if isolated else MISSING, isolation_detail))
    from coursekit.data.mnist import SPLIT_FILES, default_root

    cached = all((default_root() / "mnist" / f).exists() for f in SPLIT_FILES["train"])
    rows.append(("mnist cache", OK if cached else MISSING,
                 f"{default_root() / 'mnist'} (optional; the course uses the bundled digits)"))
    return rows


def run_doctor() -> int:
    rows = collect()
    width = max(len(r[0]) for r in rows)
    for item, status, detail in rows:
        print(f"{item:<{width}}  {status:<7}  {detail}")
    warned = [r for r in rows if r[1] == WARN]
    if warned:
        print(f"\n{len(warned)} warning(s): the course runs, but see above.")
    failed = [r for r in rows if r[1] == FAIL]
    if failed:
        print(f"\n{len(failed)} problem(s) found; the course needs these to run.")
        return 1
    print("\nEverything the course needs is here.")
    return 0
