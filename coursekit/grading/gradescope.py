"""``coursekit gradescope``: build a Gradescope autograder bundle (a zip).

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once
when building the image and ``run_autograder`` for every submission. The bundle
holds the ``coursekit`` package, the master copy ``solutions/<slug>/`` (it never
reaches students) and ``requirements.lock``: every package ``coursekit`` needs at
run time, pinned to the version installed where the bundle was built (the
instructor's tested environment), with torch pinned to the same release of its
CPU build. ``setup.sh`` makes the image reproducible: it installs that Python
minor version if the image lacks it (from Ubuntu's archive, else the deadsnakes
PPA), creates an isolated virtual environment ``/autograder/venv`` (never the
system Python), installs the CPU torch from PyTorch's index, then the lock, then
coursekit without dependencies, and checks the versions it got.
``run_autograder`` reads its paths from ``COURSEKIT_AG_SOURCE``,
``COURSEKIT_AG_SUBMISSION``, ``COURSEKIT_AG_RESULTS`` and ``COURSEKIT_AG_PYTHON``
(defaults: Gradescope's ``/autograder/...`` and the venv's python) so that it
can be tested anywhere, and always leaves a ``results.json``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from coursekit.grading.homework import Homework
from coursekit.runtime import TORCH_CPU_INDEX as CPU_INDEX

VENV = "/autograder/venv"
# packages that only the CUDA builds of torch pull in: the CPU build has none of them
CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image setup, reproducible: Python {python}, an isolated venv in
# {venv}, the CPU build of torch {torch} and every other package pinned in
# requirements.lock (the versions this bundle was built and tested with).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${{COURSEKIT_AG_VENV:-{venv}}}"
PY="python{python}"
if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -c "import ensurepip, venv" 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-get install -y -qq "$PY" "$PY-venv"; then
        apt-get install -y -qq software-properties-common
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update -qq
        apt-get install -y -qq "$PY" "$PY-venv"
    fi
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --index-url {index} "torch=={torch}"
"$VENV/bin/python" -m pip install -q -r requirements.lock
"$VENV/bin/python" -m pip install -q --no-deps .
"$VENV/bin/python" -m pip check
"$VENV/bin/python" - <<'PYCHECK'
import sys, torch
assert torch.__version__.split("+")[0] == "{torch}", torch.__version__
assert torch.version.cuda is None, "expected the CPU build of torch"
assert sys.version.startswith("{python}."), sys.version
import coursekit.grading.autograder  # noqa: F401  (the entry point imports)
print("setup ok: Python", sys.version.split()[0], "torch", torch.__version__)
PYCHECK
"""


def _linux_environment() -> dict[str, str]:
    """Marker values of the grading image: this Python, on Linux x86-64."""
    env = default_environment()
    env.update(sys_platform="linux", platform_system="Linux", os_name="posix",
               platform_machine="x86_64")
    return env


def pinned_requirements(root: str = "coursekit") -> list[str]:
    """``name==version`` for every package ``root`` needs at run time (no extras), found by
    following the installed packages' requirements, evaluated for Linux; sorted.

    torch is pinned to its public version (the CPU index serves ``X+cpu``, which
    ``==X`` accepts); the CUDA-only packages of a CUDA torch build are left out.
    A requirement that is not installed here cannot be pinned and is an error.
    """
    env = _linux_environment()
    pins: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            key = canonicalize_name(req.name)
            if key in pins or CUDA_ONLY.match(key):
                continue
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError as err:
                raise RuntimeError(f"gradescope: {req.name} (needed by {name}) is not installed "
                                   "here, so its version cannot be pinned; install coursekit's "
                                   "dependencies in this environment first") from err
            pins[key] = version.split("+")[0]
            todo.append(req.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _lock_text(pins: list[str]) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    header = (f"# coursekit's run-time packages as installed where this bundle was built\n"
              f"# (Python {python}); setup.sh installs torch from {CPU_INDEX} first.\n")
    return header + "".join(f"{pin}\n" for pin in pins)


RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope entry point for {slug}: grade the upload, ALWAYS write results.json.
SOURCE="${{COURSEKIT_AG_SOURCE:-/autograder/source}}"
SUBMISSION="${{COURSEKIT_AG_SUBMISSION:-/autograder/submission}}"
RESULTS="${{COURSEKIT_AG_RESULTS:-/autograder/results/results.json}}"
PYTHON="${{COURSEKIT_AG_PYTHON:-{venv}/bin/python}}"{unsafe}
mkdir -p "$(dirname "$RESULTS")"
rm -f "$RESULTS"
cd "$SOURCE" || exit 1
"$PYTHON" -m coursekit.grading.autograder --source "$SOURCE" \\
    --submission "$SUBMISSION" --results "$RESULTS" --homework {slug}
status=$?
if [ ! -s "$RESULTS" ]; then
    message="The autograder crashed (exit code $status) before grading."
    printf '{{"score": 0, "tests": [], "output": "%s Please contact the course staff."}}\\n' \\
        "$message" > "$RESULTS"
fi
exit 0
"""

SKIP = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def _add_tree(archive: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(p in SKIP for p in rel.parts) and path.suffix != ".pyc":
            _add_file(archive, path.read_bytes(), f"{prefix}/{rel.as_posix()}")


def _add_file(archive: zipfile.ZipFile, data: bytes, name: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16
    archive.writestr(info, data)


def build_bundle(hw: Homework, out: str | Path, unsafe_no_isolation: bool = False) -> Path:
    """Write the autograder zip for ``hw`` to ``out``; returns its path.

    ``unsafe_no_isolation`` makes ``run_autograder`` set
    ``COURSEKIT_AG_UNSAFE_NO_ISOLATION=1``: grade even where Landlock is missing
    (otherwise the grader refuses and every upload scores 0 with that message)."""
    if hw.master_dir is None:
        raise ValueError(f"gradescope: {hw.slug} has no solutions/ copy to build from")
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"--out: expected a path ending in .zip, got {out}")
    package = Path(__file__).resolve().parents[1]
    out.parent.mkdir(parents=True, exist_ok=True)
    pins = pinned_requirements()
    torch_version = next(p.split("==")[1] for p in pins if p.startswith("torch=="))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    setup = SETUP_SH.format(python=python, venv=VENV, torch=torch_version, index=CPU_INDEX)
    with zipfile.ZipFile(out, "w") as archive:
        _add_file(archive, setup.encode(), "setup.sh", executable=True)
        _add_file(archive, _lock_text(pins).encode(), "requirements.lock")
        unsafe = ("\nexport COURSEKIT_AG_UNSAFE_NO_ISOLATION=1  # built with --unsafe-no-isolation"
                  if unsafe_no_isolation else "")
        _add_file(archive, RUN_AUTOGRADER.format(slug=hw.slug, venv=VENV, unsafe=unsafe).encode(),
                  "run_autograder", executable=True)
        _add_tree(archive, package, "coursekit")
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (hw.root / name).is_file():
                _add_file(archive, (hw.root / name).read_bytes(), name)
        if not (hw.root / "README.md").is_file():
            _add_file(archive, b"coursekit autograder bundle\n", "README.md")
        _add_tree(archive, hw.master_dir, f"solutions/{hw.slug}")
    return out
