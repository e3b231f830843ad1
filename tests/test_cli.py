"""The coursekit command: help and doctor."""

import subprocess
import sys

from coursekit.cli import main
from coursekit.doctor import collect


def test_help_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "doctor" in out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "coursekit.cli", "--help"],
                            capture_output=True, text=True, check=True)
    assert "usage: coursekit" in result.stdout


def test_doctor_reports_versions_device_and_data(capsys):
    import torch

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert torch.__version__ in out
    assert "auto -> " in out and "digits train (1197, 64)" in out
    items = {row[0] for row in collect()}
    assert {"python", "torch", "device", "embedded data", "chromium"} <= items


def test_doctor_reports_a_missing_browser(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSEKIT_CHROMIUM", str(tmp_path / "no-chromium"))
    rows = {row[0]: row for row in collect()}
    assert rows["chromium"][1] == "missing"
