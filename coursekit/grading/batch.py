"""``coursekit grade``: grade a class, resumably, and write every output format.

Outputs under ``out``:

* ``results/<student>.json``: the result dict of :func:`grade_submission` plus
  ``key`` (hash of the submission and the grading code/checks). Written
  atomically (temp file + ``os.replace``); a re-run skips students whose file
  has the same key, so an interrupted run resumes where it stopped.
* ``gradebook.csv``: one row per student, one column per task, total, max.
  Rewritten (atomically) after every student, so it is complete up to the
  last finished student even when the run is interrupted.
* ``gradescope/<student>/results.json``: Gradescope's results schema.

The gradebook, the printed summary and ``gradescope/`` describe every
*up-to-date* result in ``results/``, not only the students of this run: a
result is up to date when it was graded with the same fingerprint as this run
(:func:`checks_fingerprint`: same homework, checks, reference solution, grading
code and ``--public-only`` choice). Students not named in this run keep their
result as it is on disk (their submission is not re-read). Other results stay
in ``results/`` but are left out of the gradebook and the summary, and their
``gradescope/<student>/`` folder is removed; the command names them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import queue
import shutil
import statistics
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from coursekit import __version__
from coursekit.grading.grader import grade_submission
from coursekit.grading.homework import Homework, load_checks
from coursekit.grading.integrity import CodeSnapshot
from coursekit.grading.isolation import require
from coursekit.grading.locate import find_submission
from coursekit.grading.reference import LiveReference
from coursekit.grading.sandbox import Limits


@dataclass
class Submission:
    """One student's submission: where it came from and its ``submission.py`` (if any)."""

    student: str
    source: Path
    file: Path | None
    problem: str = ""


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name).strip(".")
    return cleaned or "student"


def collect_submissions(paths: list, workdir: Path) -> list[Submission]:
    """Folders, ``submission.py`` files and zips -> :class:`Submission` list.

    Student id: the folder name, the zip's stem, or the ``.py`` file's parent
    folder name. Two submissions with the same id raise ``ValueError``.
    """
    subs: list[Submission] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ValueError(f"SUBMISSION: expected an existing path, got {raw} (does not exist)")
        if path.is_dir():
            file = path / "submission.py"
            subs.append(
                Submission(
                    _safe_name(path.resolve().name),
                    path,
                    file if file.is_file() else None,
                    "" if file.is_file() else "no submission.py in the folder",
                )
            )
        elif path.suffix == ".zip" and path.is_file():
            file, problem = find_submission(path, extract_to=workdir / _safe_name(path.stem))
            subs.append(Submission(_safe_name(path.stem), path, file, problem))
        elif path.suffix == ".py" and path.is_file():
            subs.append(Submission(_safe_name(path.resolve().parent.name), path, path))
        else:
            raise ValueError(f"SUBMISSION: expected a folder, a submission.py or a .zip, got {raw}")
    seen: dict[str, Path] = {}
    for sub in subs:
        if sub.student in seen:
            raise ValueError(
                f"SUBMISSION: two submissions for student {sub.student!r}: "
                f"{seen[sub.student]} and {sub.source}"
            )
        seen[sub.student] = sub.source
    return subs


def checks_fingerprint(hw: Homework, include_hidden: bool) -> str:
    """Hash of everything that decides a grade except the submission itself."""
    digest = hashlib.sha256(f"coursekit {__version__} hidden={include_hidden}".encode())
    files = [hw.master_dir / "submission.py", hw.master_dir / "homework.json"]
    files += sorted((hw.master_dir / "checks").glob("*.py"))
    grading = Path(__file__).resolve().parent
    files += sorted(grading.glob("*.py"))
    for file in files:
        if file.is_file():
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def submission_key(sub: Submission, fingerprint: str) -> str:
    data = sub.file.read_bytes() if sub.file is not None else sub.problem.encode()
    return hashlib.sha256(fingerprint.encode() + b"\0" + data).hexdigest()


def write_json_atomic(path: Path, data) -> None:
    """Write JSON via a temp file in the same folder and ``os.replace``."""
    _write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def missing_result(hw: Homework, sub: Submission, specs) -> dict:
    """The result of a submission that has no usable ``submission.py``: zero everywhere."""
    return {
        "homework": hw.id,
        "slug": hw.slug,
        "student": sub.student,
        "score": 0.0,
        "max_score": float(sum(s.points for s in specs)),
        "checks": [
            {
                "id": s.id,
                "task": s.task,
                "title": s.title,
                "score": 0.0,
                "max_score": s.points,
                "status": "error",
                "message": sub.problem,
                "duration": 0.0,
                "visibility": "after_published" if s.hidden else "visible",
            }
            for s in specs
        ],
        "output": "",
        "sandbox": {},
        "worker_starts": 0,
        "imports": {"module_level": [], "by_task": {}},
        "forbidden_use": {"module_level": [], "by_task": {}},
    }


def gradescope_results(result: dict) -> dict:
    """Gradescope's ``results.json`` for one result dict."""
    tests = []
    for c in result["checks"]:
        output = {"pass": "passed", "fail": "failed", "error": "error", "timeout": "timed out"}[
            c["status"]
        ]
        if c["message"]:
            output += ": " + c["message"]
        tests.append(
            {
                "name": f"{c['id']}: {c['title']}",
                "number": c["id"],
                "score": c["score"],
                "max_score": c["max_score"],
                "status": "passed" if c["status"] == "pass" else "failed",
                "visibility": c["visibility"],
                "output": output,
            }
        )
    out = {
        "score": result["score"],
        "tests": tests,
        "visibility": "visible",
        "stdout_visibility": "hidden",
    }
    if result.get("output"):
        out["output"] = "Your code printed:\n" + result["output"]
    return out


def earlier_results(results_dir: Path, fingerprint: str, skip: set[str]) -> tuple[dict, list]:
    """Results on disk of students not in ``skip``: ``({student: result}, stale names)``.

    Up to date means graded with ``fingerprint``; unreadable files and results
    without the same fingerprint are stale.
    """
    current: dict[str, dict] = {}
    stale: list[str] = []
    for path in sorted(results_dir.glob("*.json")):
        if path.stem in skip:
            continue
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {}
        if isinstance(result, dict) and result.get("fingerprint") == fingerprint:
            current[path.stem] = result
        else:
            stale.append(path.stem)
    return current, stale


def write_gradebook(path: Path, results: list[dict], tasks: list[str]) -> None:
    """One row per student (sorted), one column per task, then total and max."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *tasks, "total", "max"])
    for result in sorted(results, key=lambda r: r["student"]):
        per_task = {t: 0.0 for t in tasks}
        for c in result["checks"]:
            per_task[c["task"]] = per_task.get(c["task"], 0.0) + c["score"]
        writer.writerow(
            [
                result["student"],
                *(f"{per_task[t]:g}" for t in tasks),
                f"{result['score']:g}",
                f"{result['max_score']:g}",
            ]
        )
    _write_text_atomic(path, buffer.getvalue())


def summary_table(results: list[dict]) -> str:
    """Students, mean/median score and per-check pass rate, as text."""
    if not results:
        return "no submissions graded"
    scores = [r["score"] for r in results]
    top = results[0]["max_score"]
    lines = [
        f"students: {len(results)}   mean: {statistics.mean(scores):.2f} / {top:g}   "
        f"median: {statistics.median(scores):g} / {top:g}",
        f"{'check':<28} {'points':>6} {'pass rate':>9}  failures by status",
    ]
    order = [c["id"] for c in results[0]["checks"]]
    for check_id in order:
        rows = [c for r in results for c in r["checks"] if c["id"] == check_id]
        passed = sum(c["status"] == "pass" for c in rows)
        statuses: dict[str, int] = {}
        for c in rows:
            if c["status"] != "pass":
                statuses[c["status"]] = statuses.get(c["status"], 0) + 1
        detail = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        lines.append(
            f"{check_id:<28} {rows[0]['max_score']:>6g} "
            f"{100.0 * passed / len(rows):>8.0f}%  {detail}"
        )
    return "\n".join(lines)


def grade_batch(
    hw: Homework,
    paths: list,
    out: str | Path,
    *,
    jobs: int = 1,
    include_hidden: bool = True,
    force: bool = False,
    limits: Limits | None = None,
    progress: bool = True,
    unsafe_no_isolation: bool = False,
) -> dict:
    """Grade many submissions; returns ``{"results", "graded", "skipped", "earlier",
    "stale", "isolation"}``: every up-to-date result (this run's students first, then
    earlier ones by name), how many were graded and skipped now, how many came from
    earlier runs, the names of stale results left out (see the module doc) and
    :func:`~coursekit.grading.isolation.require`'s report of this machine.

    Refuses (:class:`~coursekit.grading.isolation.IsolationUnavailable`, nothing
    graded) where student code cannot be confined, unless ``unsafe_no_isolation``;
    stops (:class:`~coursekit.grading.integrity.TamperingDetected`, the result
    not written) when the grading code or the checks change while grading."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs: expected an int >= 1, got {jobs!r}")
    if hw.master_dir is None:
        raise ValueError(f"grade: {hw.slug} has no solutions/ copy here")
    isolation = require(unsafe_no_isolation)
    out = Path(out).resolve()
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="coursekit-grade-"))
    try:
        subs = collect_submissions(paths, workdir)
        specs = load_checks(hw, include_hidden=include_hidden)
        tasks = list(hw.tasks)
        fingerprint = checks_fingerprint(hw, include_hidden)
        reference = LiveReference(hw.master_dir, hw.harness_file())
        snapshot = CodeSnapshot.take(hw)
        snapshot.verify()
        hide = [str(out), str(workdir)] + [
            str(s.source if s.source.is_dir() else s.source.resolve().parent) for s in subs
        ]
        earlier, stale = earlier_results(results_dir, fingerprint, {s.student for s in subs})
        done: dict[str, dict] = {}
        todo = []
        for sub in subs:
            key = submission_key(sub, fingerprint)
            path = results_dir / f"{sub.student}.json"
            if not force and path.is_file():
                try:
                    old = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    old = {}
                if old.get("key") == key:
                    done[sub.student] = old
                    continue
            todo.append((sub, key))
        skipped = len(done)
        lock = threading.Lock()
        slots: queue.Queue = queue.Queue()
        for k in range(jobs):
            slots.put(k)

        def finish(result: dict) -> None:
            with lock:
                write_json_atomic(results_dir / f"{result['student']}.json", result)
                write_json_atomic(
                    out / "gradescope" / result["student"] / "results.json",
                    gradescope_results(result),
                )
                done[result["student"]] = result
                write_gradebook(out / "gradebook.csv", [*done.values(), *earlier.values()], tasks)

        def work(sub: Submission, key: str) -> dict:
            if sub.file is None:
                result = missing_result(hw, sub, specs)
            else:
                slot = slots.get()
                try:
                    result = grade_submission(
                        hw,
                        sub.file,
                        include_hidden,
                        student=sub.student,
                        limits=limits,
                        hide=hide,
                        slot=slot,
                        reference=reference,
                        specs=specs,
                        unsafe_no_isolation=unsafe_no_isolation,
                        snapshot=snapshot,
                    )
                finally:
                    slots.put(slot)
            result["key"] = key
            result["fingerprint"] = fingerprint
            finish(result)
            return result

        for result in [*done.values(), *earlier.values()]:  # refresh derived files
            write_json_atomic(
                out / "gradescope" / result["student"] / "results.json", gradescope_results(result)
            )
        for student in stale:  # derived files of stale results no longer describe a grade
            stale_file = out / "gradescope" / student / "results.json"
            if stale_file.is_file():
                stale_file.unlink()
            if stale_file.parent.is_dir() and not any(stale_file.parent.iterdir()):
                stale_file.parent.rmdir()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"grading {hw.id}", unit="submission")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(work, sub, key) for sub, key in todo]
            try:
                for future in as_completed(futures):
                    future.result()
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                for future in futures:  # e.g. TamperingDetected: grade nobody else
                    future.cancel()
                raise
        if bar is not None:
            bar.close()
        ordered = [done[s.student] for s in subs] + [earlier[n] for n in sorted(earlier)]
        write_gradebook(out / "gradebook.csv", ordered, tasks)
        return {
            "results": ordered,
            "graded": len(todo),
            "skipped": skipped,
            "earlier": len(earlier),
            "stale": stale,
            "isolation": isolation,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
