#!/usr/bin/env python3
"""Set up the course and open it, or set it up and test it: the README's two commands.

    python3 course.py lab     # create .venv, install coursekit + JupyterLab, open the lectures
    python3 course.py test    # create .venv, install coursekit + test tools, run the test suite

Only the Python standard library is used here, so this runs on a fresh
machine with Python 3.10+. The virtual environment lives in ``.venv`` next to
this file (override with ``COURSEKIT_VENV``). Installation is skipped when
nothing changed since the last successful one, so a second run works offline.
Where the machine allows it (Linux as root), the tests themselves run with the
network switched off, which proves the course's offline promise.
Arguments after ``--`` go to ``jupyter lab`` or ``pytest`` (``test`` runs pytest
with one pytest-xdist worker per CPU, at most 4; ``-- -n 0`` runs it serially).

PyTorch: an already installed torch is kept. Otherwise, on Linux without an
NVIDIA GPU, PyTorch's CPU build is installed (about 0.2 GB to download instead
of about 3 GB of CUDA libraries); ``COURSEKIT_TORCH=default`` installs PyPI's
default build instead and ``COURSEKIT_TORCH=cpu`` forces the CPU build.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXTRAS = {"lab": "lab", "test": "lab,test"}
FIRST_LECTURE = "lectures/00_introduction.ipynb"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CHOICES = ("auto", "cpu", "default")
# pip byte-compiles every package at install time (torch: 51 s of its install on the
# course's 2-core VM, 23 s with --no-compile). Keep it: the grading sandbox may not write
# __pycache__, so without the compiled files each grading worker compiled torch's modules
# again at every start (hw3's graded batch took 221 s instead of 114 s in CI).
PIP_QUIET = ("--disable-pip-version-check", "-q")


def venv_dir() -> Path:
    return Path(os.environ.get("COURSEKIT_VENV", ROOT / ".venv"))


def venv_python(env: Path) -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return env / sub


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def ensure_venv() -> Path:
    env = venv_dir()
    python = venv_python(env)
    if not python.exists():
        say(f"creating a virtual environment in {env}")
        venv.EnvBuilder(with_pip=True).create(env)
    return python


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA GPU with its driver is visible (the driver's /proc entry on
    Linux, else ``nvidia-smi -L``)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def installed_torch(python: Path) -> str | None:
    """The version of torch installed in the environment of ``python``, or None."""
    code = "import importlib.metadata as m; print(m.version('torch'))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def torch_plan(choice: str, installed: str | None, platform: str, has_gpu) -> tuple[list, str]:
    """``(pip arguments, message)`` for installing torch before coursekit.

    The arguments are empty when pip's default resolution of ``pyproject.toml``
    should decide (torch already installed, or PyPI's build wanted); ``has_gpu``
    is a callable, asked only when the answer matters.
    """
    if choice not in TORCH_CHOICES:
        raise ValueError(f"COURSEKIT_TORCH: expected one of {', '.join(TORCH_CHOICES)}, "
                         f"got {choice!r}")
    if installed:
        return [], (f"keeping the installed torch {installed} (to change builds, delete "
                    f"{venv_dir()} and run again, with COURSEKIT_TORCH=cpu or default)")
    linux = platform.startswith("linux")
    if choice == "cpu" or (choice == "auto" and linux and not has_gpu()):
        why = ("COURSEKIT_TORCH=cpu" if choice == "cpu" else "no NVIDIA GPU found")
        return (["torch", "--index-url", CPU_INDEX],
                f"{why}: installing PyTorch's CPU build (about 0.2 GB to download; "
                "COURSEKIT_TORCH=default installs PyPI's CUDA build, about 3 GB, instead)")
    if linux:
        why = "COURSEKIT_TORCH=default" if choice == "default" else "NVIDIA GPU found"
        return [], f"{why}: installing PyPI's torch with CUDA (about 3 GB to download)"
    return [], "installing PyPI's torch for this platform (CPU, and MPS on Apple silicon)"


def install_torch(python: Path) -> None:
    """Install the torch build this machine needs (see :func:`torch_plan`)."""
    choice = os.environ.get("COURSEKIT_TORCH", "auto").strip().lower() or "auto"
    try:
        args, message = torch_plan(choice, installed_torch(python), sys.platform,
                                   nvidia_gpu_present)
    except ValueError as err:
        say(str(err))
        sys.exit(2)
    say(message)
    if args and subprocess.call([str(python), "-m", "pip", "install", *PIP_QUIET, *args]) != 0:
        say(f"pip could not install torch from {CPU_INDEX}. Offline? Run once with a network "
            "connection, or set COURSEKIT_TORCH=default to use PyPI.")
        sys.exit(1)


def install(python: Path, extras: str) -> None:
    """pip install -e .[extras], skipped when pyproject.toml is unchanged since last time."""
    stamp = venv_dir() / f".coursekit-installed-{extras.replace(',', '-')}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        say(f"dependencies already installed ({extras}); skipping pip")
        return
    install_torch(python)
    say(f"installing coursekit with extras [{extras}] (first time: a few minutes)")
    start = time.perf_counter()
    cmd = [str(python), "-m", "pip", "install", *PIP_QUIET, "-e", f"{ROOT}[{extras}]"]
    if subprocess.call(cmd) != 0:
        say("pip failed. Offline? Run once with a network connection; after that the course "
            "runs offline. CPU-only laptop? See 'Troubleshooting' in README.md.")
        sys.exit(1)
    stamp.write_text(digest)
    say(f"installed in {time.perf_counter() - start:.0f} s")


def lab_command(python: Path, extra_args: list[str]) -> list[str]:
    """``jupyter lab`` serving the course folder, with the first lecture as its default
    page: the URL JupyterLab prints (on a headless machine the only link a user has)
    and the page it opens then show that lecture rather than the file browser."""
    cmd = [str(python), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}"]
    if (ROOT / FIRST_LECTURE).exists():
        cmd.append(f"--LabApp.default_url=/lab/tree/{FIRST_LECTURE}")
    if running_as_root():  # containers often run as root
        cmd.append("--ServerApp.allow_root=True")
    return cmd + list(extra_args)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab(python: Path, extra_args: list[str]) -> int:
    say("opening JupyterLab at the first lecture (Ctrl-C twice to stop)")
    cmd = lab_command(python, extra_args)
    if running_as_root():
        say("running as root: passing --allow-root to JupyterLab")
    try:
        return subprocess.call(cmd, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


def offline_prefix() -> list[str]:
    """A command prefix that runs a program with no network but loopback, if this
    machine allows it (Linux, root, util-linux ``unshare`` and iproute2 ``ip``)."""
    if not sys.platform.startswith("linux") or not running_as_root():
        return []
    prefix = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    try:
        ok = subprocess.call([*prefix, "true"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) == 0
    except OSError:
        ok = False
    return prefix if ok else []


def worker_count() -> int:
    """How many pytest-xdist workers run the suite: one per CPU this process may
    use, at most 4 (the slow parts are a handful of notebooks, the grading
    sandbox and one JupyterLab session, so more would mostly add start-up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cpus or 1, 4)


def test(python: Path, extra_args: list[str]) -> int:
    start = time.perf_counter()
    prefix = offline_prefix()
    if prefix:
        say("network disabled for the tests (fresh network namespace with loopback only)")
    workers = worker_count()
    # pyproject.toml says what runs (the tests, and the notebooks through nbval)
    # and how tests are grouped on workers; -n only spreads that over the CPUs.
    parallel = ["-n", str(workers)] if workers > 1 else []
    say(f"pytest on {workers} worker(s) "
        "(unit, property, notebook, grading, style and browser tests)")
    env = dict(os.environ)
    if workers > 1:
        # one math thread per worker: two workers that each spin two OpenMP threads
        # on two cores ran a 0.4 s mixture fit in 1.9 s, with one thread each in 0.9 s
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
    code = subprocess.call([*prefix, str(python), "-m", "pytest", *parallel, *extra_args],
                           cwd=ROOT, env=env)
    if code == 5:  # pytest collected nothing: that is a failure, not a pass
        say("pytest collected no tests")
        code = 1
    say(f"tests finished in {time.perf_counter() - start:.0f} s with exit code {code}")
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may run under any python3
        say(f"Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
        return 1
    command, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    python = ensure_venv()
    install(python, EXTRAS[command])
    return lab(python, rest) if command == "lab" else test(python, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
