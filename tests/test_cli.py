"""The coursekit command: help and doctor."""

import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.doctor import collect


def test_plain_coursekit_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in ("doctor", "release", "check", "grade", "gradescope"):
        assert command in err
    assert "examples:" in err


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["doctor", "release", "check", "grade", "gradescope"])
def test_every_command_has_a_description_and_examples(capsys, command):
    paragraphs = _help(capsys, command).split("\n\n")
    assert paragraphs[0].startswith(f"usage: coursekit {command}")
    description = paragraphs[1]
    assert not description.startswith(("positional arguments:", "options:")), "no description"
    assert len(description.split()) >= 15, description
    assert paragraphs[-1].startswith(f"examples:\n  coursekit {command}")


def test_grade_help_states_defaults_and_student_names(capsys):
    text = " ".join(_help(capsys, "grade").split())
    assert "--jobs N submissions graded in parallel (default: 1;" in text
    assert "student name" in text and "parent folder" in text and "zip" in text


def test_unknown_homework_lists_the_homework_ids(capsys):
    repo = Path(__file__).resolve().parents[1]
    assert main(["check", "hw9", "--root", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "coursekit check: error: HW: expected one of hw1, hw2, hw3, hw4, got 'hw9'" in err


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


def test_doctor_warns_about_a_cuda_build_without_a_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = {row[0]: row for row in collect()}
    assert rows["torch"][1] == "warn"
    assert "CUDA 13.0 build but no usable NVIDIA GPU" in rows["torch"][2]
    assert "--index-url https://download.pytorch.org/whl/cpu" in rows["torch"][2]
    assert main(["doctor"]) == 0  # a warning, not a failure
    assert "1 warning(s)" in capsys.readouterr().out


def test_doctor_names_the_build_it_found():
    import torch

    row = {r[0]: r for r in collect()}["torch"]
    assert row[1] == "ok" or torch.version.cuda  # this CPU-only machine: never a warning
    assert ("CPU build" in row[2]) == (torch.version.cuda is None)
