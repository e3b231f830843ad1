"""course.py, the README's two commands: which torch it installs, what `lab` opens."""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def course():
    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _no_probe():
    raise AssertionError("the GPU probe ran though its answer did not matter")


def test_linux_without_a_gpu_gets_the_cpu_build(course):
    args, message = course.torch_plan("auto", None, "linux", lambda: False)
    assert args == ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert message.startswith("no NVIDIA GPU found: installing PyTorch's CPU build")
    assert "COURSEKIT_TORCH=default" in message  # the override is offered


def test_linux_with_a_gpu_and_other_platforms_use_pypi(course):
    args, message = course.torch_plan("auto", None, "linux", lambda: True)
    assert args == [] and "NVIDIA GPU found" in message
    for platform in ("darwin", "win32"):
        args, message = course.torch_plan("auto", None, platform, _no_probe)
        assert args == [] and "for this platform" in message


def test_an_installed_torch_is_kept_whatever_the_choice(course):
    for choice in course.TORCH_CHOICES:
        args, message = course.torch_plan(choice, "2.13.0+cpu", "linux", _no_probe)
        assert args == [] and message.startswith("keeping the installed torch 2.13.0+cpu")


def test_overrides(course):
    assert course.torch_plan("cpu", None, "darwin", _no_probe)[0][-1] == course.CPU_INDEX
    args, message = course.torch_plan("default", None, "linux", _no_probe)
    assert args == [] and message.startswith("COURSEKIT_TORCH=default")
    with pytest.raises(ValueError, match="COURSEKIT_TORCH: expected one of auto, cpu, default"):
        course.torch_plan("gpu", None, "linux", _no_probe)


def test_install_torch_runs_pip_with_the_cpu_index(course, monkeypatch, capsys):
    calls = []
    monkeypatch.delenv("COURSEKIT_TORCH", raising=False)
    monkeypatch.setattr(course, "installed_torch", lambda python: None)
    monkeypatch.setattr(course, "nvidia_gpu_present", lambda: False)
    monkeypatch.setattr(course.sys, "platform", "linux")
    monkeypatch.setattr(course.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    course.install_torch(Path("/venv/bin/python"))
    assert calls == [["/venv/bin/python", "-m", "pip", "install", "--disable-pip-version-check",
                      "-q", "torch", "--index-url", "https://download.pytorch.org/whl/cpu"]]
    assert "installing PyTorch's CPU build" in capsys.readouterr().out


def test_installed_torch_reads_the_environment(course, tmp_path):
    from importlib.metadata import version

    assert course.installed_torch(Path(sys.executable)) == version("torch")
    assert course.installed_torch(tmp_path / "no-python") is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_prints_a_url_that_opens_the_first_lecture(course, tmp_path):
    """On a headless machine the printed URL is the only link: it must open lecture 00."""
    port = _free_port()
    cmd = course.lab_command(Path(sys.executable), [
        "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.runtime_dir={tmp_path}", "--LabApp.news_url=None"])
    proc = subprocess.Popen(cmd, cwd=course.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 150
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            found = re.findall(rf"http://127\.0\.0\.1:{port}/\S+", "".join(lines))
            url = found[0] if found else None
        assert url, "".join(lines)[-2000:]
        assert url.split("?")[0].endswith(f":{port}/lab/tree/{course.FIRST_LECTURE}")
        for _ in range(60):  # the URL is printed as the server starts listening
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    assert response.status == 200
                    assert "00_introduction.ipynb" in response.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{url} never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
