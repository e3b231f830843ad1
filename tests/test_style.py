"""The code base is ruff clean (notebooks included)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    if shutil.which("ruff") is None and subprocess.call(
        [sys.executable, "-m", "ruff", "--version"], stdout=subprocess.DEVNULL
    ) != 0:
        pytest.fail("ruff is not installed; it comes with the test extra: pip install -e .[test]")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
