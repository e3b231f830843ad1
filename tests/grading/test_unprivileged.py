"""The hostile-submission suite as an ORDINARY user (issue 21): nothing on disk changes.

CI runs as root, where the worker also drops to a private uid; most instructors
grade from their own account, where the file-system allow-list (Landlock) is
what keeps a submission from rewriting the course package they run. As root,
this test prepares what such an instructor has, owned by an unprivileged
account: a course checkout, an installed copy of ``coursekit``, a virtual
environment, a home folder and earlier results; it plants world-readable
copies of the reference solution elsewhere (another "user's" checkout in
``/tmp``) and a world-writable file. Then ``unprivileged_driver.py`` runs as
that account: ONE batch of focused hostile submissions, the Gradescope entry
point, and a run without the allow-list that must be refused by the integrity
check. Every watched tree must be byte-for-byte (and mode-for-mode) unchanged.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from coursekit.grading.isolation import landlock_abi
from coursekit.grading.worker import _blocking_ancestor

from .conftest import FIXTURE_COURSE, REPO, copy_submission

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"),
                                                   reason="Linux only")]  # fmt: skip
HERE = Path(__file__).resolve().parent
REFERENCE = "solutions/hw0_fake/submission.py"


def _account() -> tuple[int, int, str]:
    """An ordinary account: $COURSEKIT_TEST_UID, else the first user with uid 1000-59999,
    else uid/gid 4242 (setpriv needs no passwd entry)."""
    if os.environ.get("COURSEKIT_TEST_UID"):
        uid = int(os.environ["COURSEKIT_TEST_UID"])
        return uid, uid, str(uid)
    for entry in sorted(pwd.getpwall(), key=lambda e: e.pw_uid):
        if 1000 <= entry.pw_uid < 60000:
            return entry.pw_uid, entry.pw_gid, entry.pw_name
    return 4242, 4242, "4242"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return (
            "needs root to set up an unprivileged grader (CI runs as root); "
            "test_hostile.py runs the suite as the current, ordinary user"
        )
    if landlock_abi() < 1:
        return "no Landlock on this kernel: grading refuses here (test_isolation.py covers that)"
    missing = [tool for tool in ("unshare", "setpriv") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} (util-linux) not installed"
    return None


def _expose_python(scratch: Path) -> str:
    """Shell lines that make the interpreter reachable for the account, in a private
    mount namespace: a folder it cannot enter (pyenv under /root) is covered by a tmpfs
    that holds a bind mount of the Python installation only."""
    needed = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)]
    needed += [os.path.realpath(p) for p in sys.path if p.endswith("site-packages")]
    needed = [p for p in dict.fromkeys(needed) if not any(p.startswith(q + "/") for q in needed)]
    keep, cover, back = [], [], []
    for k, path in enumerate(needed):
        blocker = _blocking_ancestor(path)
        if blocker is None or blocker == path:
            continue
        (scratch / f"keep{k}").mkdir()
        keep.append(f"mount --rbind '{path}' '{scratch}/keep{k}'")
        if f"mount -t tmpfs -o mode=755 tmpfs '{blocker}'" not in cover:
            cover.append(f"mount -t tmpfs -o mode=755 tmpfs '{blocker}'")
        back += [f"mkdir -p '{path}'", f"mount --rbind '{scratch}/keep{k}' '{path}'"]
    return "\n".join(keep + cover + back)


@pytest.fixture(scope="module")
def unprivileged():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    uid, gid, name = _account()
    base = Path(tempfile.mkdtemp(prefix="coursekit-unpriv-"))
    stray = Path(tempfile.mkdtemp(prefix="coursekit-stray-"))  # someone else's files
    escape_file = Path(tempfile.gettempdir()) / f"coursekit-escaper-{base.name}.py"
    try:
        yield _run(base, stray, escape_file, uid, gid, name)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(stray, ignore_errors=True)
        escape_file.unlink(missing_ok=True)


def _run(base: Path, stray: Path, escape_file: Path, uid: int, gid: int, name: str) -> dict:
    os.chmod(base, 0o755)
    os.chmod(stray, 0o755)
    # what an instructor grading from an ordinary account has, all owned by that account
    pkg = base / "pkg"
    shutil.copytree(REPO / "coursekit", pkg / "coursekit",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    venv = base / "venv"
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = venv / "lib" / version / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    real_python = os.path.realpath(sys.executable)
    os.symlink(real_python, venv / "bin" / "python")
    (venv / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(real_python)}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n"
    )
    # the installed package first, then this environment's dependencies (torch, numpy)
    deps = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
    (site / "course.pth").write_text("\n".join([str(pkg), *deps]) + "\n")
    course = base / "course"
    shutil.copytree(FIXTURE_COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    home = base / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# the instructor's shell settings\n")
    out, subs = base / "out", base / "subs"
    # copies of the reference in places others can read, outside the course
    planted = [stray / "course" / REFERENCE, stray / "home/bob/course" / REFERENCE]
    for path in planted:
        path.parent.mkdir(parents=True)
        shutil.copyfile(FIXTURE_COURSE / REFERENCE, path)
    for folder in [stray, *stray.rglob("*")]:
        os.chmod(folder, 0o755 if folder.is_dir() else 0o644)
    victim = stray / "victim.txt"  # world-writable: only the allow-list protects it
    victim.write_text("nobody may change this\n")
    os.chmod(victim, 0o666)
    dropbox = stray / "dropbox"
    dropbox.mkdir()
    os.chmod(dropbox, 0o777)

    targets = [
        str(pkg / "coursekit" / "**" / "*.py"), str(pkg / "coursekit"),
        str(pkg / "coursekit" / "grading"), str(course / REFERENCE),
        str(course / "solutions/hw0_fake/checks/hidden.py"), str(out / "results" / "*.json"),
        str(out / "gradescope" / "**" / "results.json"), str(home / ".bashrc"), str(home),
        str(venv / "pyvenv.cfg"), str(site / "course.pth"), str(victim), str(dropbox),
        str(escape_file),
    ]  # fmt: skip
    copy_submission("escaper", subs, TARGETS=targets)
    copy_submission("correct", subs)
    copy_submission("finder", subs, GUESSES=[
        *map(str, planted), str(course / REFERENCE), str(FIXTURE_COURSE / REFERENCE)])  # fmt: skip
    copy_submission("reader", subs, SECRET_PATHS=[
        str(course / "solutions/hw0_fake/checks/hidden.py"), str(course / REFERENCE)])  # fmt: skip
    copy_submission("vandal", subs, TARGETS=targets)
    copy_submission("escaper", base / "upload", "gradescope_upload", TARGETS=targets)
    tamper = copy_submission(
        "escaper", base / "later", "tamperer", TARGETS=[str(pkg / "coursekit/grading/*.py")]
    )
    shutil.copyfile(HERE / "unprivileged_driver.py", base / "driver.py")
    report = base / "report.json"
    config = {
        "course": str(course),
        "out": str(out),
        "subs": [str(subs / n) for n in ("correct", "escaper", "finder", "reader", "vandal")],
        "autograder": {
            "submission": str(base / "upload"),
            "results": str(base / "ag" / "results.json"),
        },
        "tamper": str(tamper / "submission.py"),
        "watch": {
            "installed package": str(pkg),
            "course checkout": str(course),
            "home": str(home),
            "virtual environment": str(venv),
            "earlier result of alice": str(out / "results" / "alice.json"),
            "gradescope folder of alice": str(out / "gradescope" / "alice"),
            "other user's files in /tmp": str(stray),
        },
        "absent": [str(escape_file), str(dropbox / "planted.py"), str(home / "planted.py")],
        "report": str(report),
    }
    if _blocking_ancestor(str(REPO / "coursekit")) is None:  # readable by the account
        config["watch"]["this repository's coursekit/grading"] = str(REPO / "coursekit/grading")
    (base / "config.json").write_text(json.dumps(config))
    for folder, dirs, files in os.walk(base):
        for entry in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
            os.lchown(entry, uid, gid)
    script = "\n".join([
        "set -e",
        _expose_python(base),
        f"exec setpriv --reuid={uid} --regid={gid} --clear-groups -- "
        f"'{venv}/bin/python' -I '{base}/driver.py' '{base}/config.json'",
    ])  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        cwd=str(base), env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"cannot create a mount namespace here: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    data = json.loads(report.read_text())
    data.update(account=name, uid_expected=uid, base=str(base), pkg=str(pkg))
    summary = {k: data[k] for k in ("account", "uid", "seconds", "changed", "appeared", "tamper")}
    summary["scores"] = {n: r["score"] for n, r in data["results"].items()}
    summary["gradescope score"] = data["autograder"]["results"]["score"]
    print(json.dumps(summary, indent=1))
    return data


def test_graded_as_the_ordinary_account_from_its_own_installation(unprivileged):
    assert unprivileged["uid"] == unprivileged["uid_expected"] != 0
    assert unprivileged["coursekit"].startswith(unprivileged["pkg"])


def test_nothing_on_disk_changed(unprivileged):
    assert all(changes == [] for changes in unprivileged["changed"].values()), unprivileged[
        "changed"
    ]
    assert unprivileged["appeared"] == []


def test_every_worker_ran_under_the_allow_list(unprivileged):
    for student, result in unprivileged["results"].items():
        if student == "alice":  # recorded earlier, not graded in this run
            continue
        sandbox = result["sandbox"]
        assert isinstance(sandbox.get("landlock"), dict), (student, sandbox)
        assert sandbox["user"].startswith("unchanged"), sandbox["user"]
        assert "denied" in sandbox.get("seccomp", ""), sandbox
        assert result["isolation"].startswith("landlock ABI")


def test_attackers_get_their_fair_scores(unprivileged):
    results = unprivileged["results"]
    assert results["correct"]["score"] == 5.0
    assert results["escaper"]["score"] == 5.0, results["escaper"]["checks"]
    assert results["vandal"]["score"] == 5.0, results["vandal"]["checks"]
    reader = results["reader"]["checks"]
    assert reader["0a-basic"][0] == "fail" and "Error" in reader["0a-basic"][1]


def test_searching_the_file_system_finds_no_copy_of_the_reference(unprivileged):
    finder = unprivileged["results"]["finder"]
    assert finder["score"] == 0.0, finder
    assert "readable copies: []" in finder["output"]
    assert all("found no readable copy" in c[1] for c in finder["checks"].values())


def test_gradescope_entry_point_uses_the_same_sandbox(unprivileged):
    ag = unprivileged["autograder"]
    assert ag["returncode"] == 0, ag["stderr"]
    assert ag["results"]["score"] == 5.0, ag["results"]
    assert "isolation: landlock ABI" in ag["stdout"]


def test_without_the_allow_list_the_tampering_is_detected_and_refused(unprivileged):
    assert unprivileged["tamper"].startswith("refused: "), unprivileged["tamper"]
    assert "coursekit/grading/" in unprivileged["tamper"]
