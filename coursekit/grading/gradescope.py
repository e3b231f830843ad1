"""``coursekit gradescope``: build a Gradescope autograder bundle (a zip).

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once
when building the image and ``run_autograder`` for every submission. The bundle
holds the ``coursekit`` package (installed by ``setup.sh`` with the CPU build of
torch) and the master copy ``solutions/<slug>/`` (it never reaches students).
``run_autograder`` reads its paths from ``COURSEKIT_AG_SOURCE``,
``COURSEKIT_AG_SUBMISSION``, ``COURSEKIT_AG_RESULTS`` and ``COURSEKIT_AG_PYTHON``
(defaults: Gradescope's ``/autograder/...`` and ``python3``) so that it can be
tested anywhere, and always leaves a ``results.json``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from coursekit.grading.homework import Homework

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image setup: CPU-only torch, then coursekit from this bundle.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --upgrade pip
python3 -m pip install --index-url https://download.pytorch.org/whl/cpu torch
python3 -m pip install .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope entry point for {slug}: grade the upload, ALWAYS write results.json.
SOURCE="${{COURSEKIT_AG_SOURCE:-/autograder/source}}"
SUBMISSION="${{COURSEKIT_AG_SUBMISSION:-/autograder/submission}}"
RESULTS="${{COURSEKIT_AG_RESULTS:-/autograder/results/results.json}}"
PYTHON="${{COURSEKIT_AG_PYTHON:-python3}}"
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


def build_bundle(hw: Homework, out: str | Path) -> Path:
    """Write the autograder zip for ``hw`` to ``out``; returns its path."""
    if hw.master_dir is None:
        raise ValueError(f"gradescope: {hw.slug} has no solutions/ copy to build from")
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"--out: expected a path ending in .zip, got {out}")
    package = Path(__file__).resolve().parents[1]
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        _add_file(archive, SETUP_SH.encode(), "setup.sh", executable=True)
        _add_file(
            archive, RUN_AUTOGRADER.format(slug=hw.slug).encode(), "run_autograder", executable=True
        )
        _add_tree(archive, package, "coursekit")
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (hw.root / name).is_file():
                _add_file(archive, (hw.root / name).read_bytes(), name)
        if not (hw.root / "README.md").is_file():
            _add_file(archive, b"coursekit autograder bundle\n", "README.md")
        _add_tree(archive, hw.master_dir, f"solutions/{hw.slug}")
    return out
