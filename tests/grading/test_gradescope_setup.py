"""The Gradescope bundle's setup: pinned packages, the CPU build of torch, an isolated venv.

Gradescope builds its image from ``setup.sh`` with network access; this machine
has none, so the script runs here against stand-in ``python3.X`` programs that
record each command and create the files a real venv would. What is proven: the
commands ``setup.sh`` runs, in order, and what ``requirements.lock`` pins. What
is not: that PyPI and PyTorch's index serve those versions today.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coursekit.grading.gradescope import CPU_INDEX, VENV, build_bundle, pinned_requirements
from coursekit.grading.homework import resolve_homework

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_lock_pins_every_runtime_package_to_the_installed_version():
    pins = dict(line.split("==") for line in pinned_requirements())
    for name in ("torch", "numpy", "scipy", "scikit-learn", "matplotlib", "tqdm", "ipywidgets",
                 "sympy", "filelock"):  # coursekit's own and torch's requirements
        assert pins[name] == metadata.version(name).split("+")[0]
    assert not any(n.startswith("nvidia-") or n == "triton" for n in pins)
    assert "pytest" not in pins and "jupyterlab" not in pins  # extras stay out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gradescope")
    root = Path(__file__).parent / "fixtures" / "course"
    path = build_bundle(resolve_homework("hw0", root), tmp / "hw0.zip")
    source = tmp / "source"
    with zipfile.ZipFile(path) as z:
        z.extractall(source)
    for name in ("setup.sh", "run_autograder"):
        os.chmod(source / name, 0o755)
    return source


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_setup_creates_a_venv_and_installs_the_pinned_cpu_build(bundle, tmp_path):
    lock = (bundle / "requirements.lock").read_text().splitlines()
    assert [line for line in lock if not line.startswith("#")] == pinned_requirements()
    torch_version = metadata.version("torch").split("+")[0]
    log, bindir, venv = tmp_path / "log", tmp_path / "bin", tmp_path / "venv"
    bindir.mkdir()
    # the image's python3.X: `-c` probes succeed, `-m venv DIR` makes DIR/bin/python,
    # itself a recorder (its heredoc check prints what the real one would)
    _stub(bindir / f"python{PYTHON}", f"""echo "system $*" >> {log}
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/python" <<'STUB'
#!/usr/bin/env bash
echo "venv $*" >> {log}
if [ "$1" = "-" ]; then cat > /dev/null; echo "setup ok"; fi
STUB
  chmod +x "$3/bin/python"
fi
""")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
               COURSEKIT_AG_VENV=str(venv))
    done = subprocess.run(["bash", str(bundle / "setup.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "setup ok" in done.stdout
    calls = log.read_text().splitlines()
    assert calls[0] == 'system -c import ensurepip, venv'
    assert calls[1] == f"system -m venv {venv}"
    assert calls[2:] == [
        "venv -m pip install -q --upgrade pip",
        f"venv -m pip install -q --index-url {CPU_INDEX} torch=={torch_version}",
        "venv -m pip install -q -r requirements.lock",
        "venv -m pip install -q --no-deps .",
        "venv -m pip check",
        "venv -",
    ]
    assert not any("system -m pip" in c for c in calls)  # nothing goes into the system Python
    script = (bundle / "setup.sh").read_text()
    assert f'torch.__version__.split("+")[0] == "{torch_version}"' in script
    assert "torch.version.cuda is None" in script


def test_setup_stops_at_the_first_failing_step(bundle, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _stub(bindir / f"python{PYTHON}", """if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"; printf '#!/usr/bin/env bash\\nexit 3\\n' > "$3/bin/python"
  chmod +x "$3/bin/python"
fi
""")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
               COURSEKIT_AG_VENV=str(tmp_path / "venv"))
    done = subprocess.run(["bash", str(bundle / "setup.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3  # a failed pip fails the image build instead of drifting on


def test_run_autograder_uses_the_venv_python(bundle):
    script = (bundle / "run_autograder").read_text()
    assert f'PYTHON="${{COURSEKIT_AG_PYTHON:-{VENV}/bin/python}}"' in script


def test_an_unsafe_bundle_says_so_in_run_autograder(tmp_path):
    root = Path(__file__).parent / "fixtures" / "course"
    hw = resolve_homework("hw0", root)
    for unsafe in (False, True):
        path = build_bundle(hw, tmp_path / f"hw0_{unsafe}.zip", unsafe_no_isolation=unsafe)
        with zipfile.ZipFile(path) as z:
            script = z.read("run_autograder").decode()
        assert ("export COURSEKIT_AG_UNSAFE_NO_ISOLATION=1" in script) == unsafe
