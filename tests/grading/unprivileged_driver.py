"""Grades hostile submissions as an ordinary user and reports what changed on disk.

Run by ``test_unprivileged.py`` (as root it prepares an account, a course
checkout, an installed copy of ``coursekit`` and a virtual environment owned by
that account) as ``<venv>/bin/python -I unprivileged_driver.py CONFIG.json``
under that account. Standard library + coursekit only; also imported by the
root variant (``test_hostile.py``) for :func:`tree_digest`.

Steps: record an up-to-date result of another student, hash every watched
tree, grade the submissions in ONE batch (``grade_batch``, 2 jobs), run the
Gradescope entry point (``coursekit.grading.autograder.main``, what the
bundle's ``run_autograder`` runs) on one upload, hash again, then grade the
``tamper`` submission WITHOUT the allow-list (``Limits(confine=False)`` +
``unsafe_no_isolation``, as on a machine without Landlock) and record that
the trusted process refused to record a result after the grading code
changed. Writes a JSON report.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import sys
import time
from pathlib import Path


def tree_digest(path: str) -> dict:
    """``{relative path: "mode sha256"}`` of every file and folder under ``path``."""
    out = {}
    if not os.path.lexists(path):
        return {".": "absent"}
    if not os.path.isdir(path):
        with open(path, "rb") as handle:
            data = handle.read()
        return {".": f"{stat.S_IMODE(os.lstat(path).st_mode):o} {hashlib.sha256(data).hexdigest()}"}
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(folder, path)
        out[rel + "/"] = f"{stat.S_IMODE(os.lstat(folder).st_mode):o}"
        for name in sorted(files):
            full = os.path.join(folder, name)
            with open(full, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            out[os.path.join(rel, name)] = f"{stat.S_IMODE(os.lstat(full).st_mode):o} {digest}"
    return out


def main(config_path: str) -> int:
    with open(config_path) as handle:
        cfg = json.load(handle)
    import coursekit
    from coursekit.grading import autograder
    from coursekit.grading.batch import (
        checks_fingerprint,
        grade_batch,
        gradescope_results,
        write_json_atomic,
    )
    from coursekit.grading.grader import grade_submission
    from coursekit.grading.homework import resolve_homework
    from coursekit.grading.integrity import TamperingDetected
    from coursekit.grading.sandbox import Limits

    report: dict = {"uid": os.getuid(), "coursekit": coursekit.__file__, "seconds": {}}
    hw = resolve_homework("hw0", cfg["course"])
    out = cfg["out"]
    # another student's up-to-date result, graded earlier: must stay byte-for-byte the same
    other = {
        "homework": hw.id, "slug": hw.slug, "student": "alice", "score": 5.0, "max_score": 5.0,
        "checks": [], "output": "", "sandbox": {}, "worker_starts": 1,
        "fingerprint": checks_fingerprint(hw, True), "key": "earlier",
    }  # fmt: skip
    write_json_atomic(Path(out, "results", "alice.json"), other)
    write_json_atomic(Path(out, "gradescope", "alice", "results.json"), gradescope_results(other))
    before = {name: tree_digest(path) for name, path in cfg["watch"].items()}
    limits = Limits(mem_bytes=3 * 1024**3)

    began = time.monotonic()
    outcome = grade_batch(hw, cfg["subs"], out, jobs=2, limits=limits, progress=False)
    report["seconds"]["batch"] = round(time.monotonic() - began, 1)
    report["results"] = {
        r["student"]: {
            "score": r["score"],
            "checks": {c["id"]: [c["status"], c["message"][:500]] for c in r["checks"]},
            "output": r.get("output", "")[:2000],
            "sandbox": r.get("sandbox", {}),
            "isolation": r.get("isolation", ""),
        }
        for r in outcome["results"]
    }

    # the Gradescope bundle's entry point (run_autograder runs this main), in this process
    began = time.monotonic()
    ag = cfg["autograder"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = autograder.main(["--source", cfg["course"], "--submission", ag["submission"],
                                "--results", ag["results"], "--homework", hw.slug])  # fmt: skip
    report["seconds"]["autograder"] = round(time.monotonic() - began, 1)
    report["autograder"] = {
        "returncode": code,
        "stdout": stdout.getvalue()[-2000:],
        "stderr": stderr.getvalue()[-2000:],
        "results": json.loads(Path(ag["results"]).read_text()),
    }

    after = {name: tree_digest(path) for name, path in cfg["watch"].items()}
    report["changed"] = {
        name: sorted(k for k in set(before[name]) | set(after[name])
                     if before[name].get(k) != after[name].get(k))
        for name in before
    }  # fmt: skip
    report["appeared"] = [p for p in cfg["absent"] if os.path.lexists(p)]

    # Without the allow-list (a machine without Landlock, graded with the unsafe flag),
    # the same attack rewrites the installed package: the trusted process must notice.
    began = time.monotonic()
    try:
        grade_submission(
            hw,
            cfg["tamper"],
            limits=Limits(mem_bytes=3 * 1024**3, confine=False),
            unsafe_no_isolation=True,
            include_hidden=False,
            hide=[out],
        )
        report["tamper"] = "not detected"
    except TamperingDetected as err:
        report["tamper"] = "refused: " + str(err)
    report["seconds"]["tamper"] = round(time.monotonic() - began, 1)
    with open(cfg["report"], "w") as handle:
        json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
