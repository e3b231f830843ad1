"""Grading one submission: run every check in the trusted process, student calls in a sandbox.

:func:`grade_submission` (instructor side, uses ``solutions/``) and
:func:`run_public_checks` (student side, uses the released homework and its
recorded expected values) both return a result dict::

    {"homework": "hw1", "student": "...", "score": 7.0, "max_score": 10.0,
     "checks": [{"id", "task", "title", "score", "max_score", "status",
                 "message", "duration", "visibility"}, ...],
     "output": "first 10 kB the student's code printed", "sandbox": {...defences...},
     "imports": {"module_level": [...], "by_task": {"1a": [...]}},
     "forbidden_use": {"module_level": [...], "by_task": {"1a": ["coursekit.probability"]}}}

``imports`` lists the modules the submission loaded (at import of
``submission.py`` / during each task's calls), ``forbidden_use`` those of
``homework.json``'s ``forbidden_modules`` it tried to load; see
:func:`apply_forbidden` for how that is scored.

``status`` is ``pass``, ``fail`` (wrong answer, or the student's function
raised), ``timeout`` or ``error`` (the submission could not be imported, the
worker crashed, or a bug in the check itself: the message then says so without
showing the check's internals).
"""

from __future__ import annotations

import time
from pathlib import Path

from coursekit.grading.checks import CheckContext, CheckFailure, CheckSpec
from coursekit.grading.homework import Homework, load_checks, resolve_homework
from coursekit.grading.integrity import CodeSnapshot
from coursekit.grading.isolation import IsolationUnavailable, describe, require
from coursekit.grading.reference import LiveReference, ReplayReference
from coursekit.grading.sandbox import Limits, Sandbox


def run_checks(specs: list[CheckSpec], sandbox, reference) -> list[dict]:
    """Run checks in order; one result dict per check. Never raises for student faults.

    When ``sandbox`` reports :attr:`~coursekit.grading.sandbox.Sandbox.usage`,
    each entry is tagged with the task of the check whose calls produced it,
    and :func:`apply_forbidden` zeroes the tasks that used a forbidden module.
    """
    results = []
    usage = getattr(sandbox, "usage", None)
    usage = usage if isinstance(usage, list) else []
    if specs and hasattr(sandbox, "start"):
        try:
            sandbox.start()  # import once up front; an import failure fails every check
        except CheckFailure:
            pass
    for spec in specs:
        start = time.monotonic()
        mark = len(usage)
        ctx = CheckContext(spec, sandbox, reference)
        status, message = "pass", ""
        try:
            spec.func(ctx)
        except IsolationUnavailable:
            raise  # the machine's fault, not the student's: stop grading
        except CheckFailure as err:
            status, message = err.status, str(err) or "check failed"
        except Exception as err:  # noqa: BLE001  (a bug in the check, not the student's)
            status = "error"
            message = (
                f"internal error in this check ({type(err).__name__}); "
                "this is not your fault: please report it to the course staff"
            )
        results.append(
            {
                "id": spec.id,
                "task": spec.task,
                "title": spec.title,
                "score": spec.points if status == "pass" else 0.0,
                "max_score": spec.points,
                "status": status,
                "message": message,
                "duration": round(time.monotonic() - start, 3),
                "visibility": "after_published" if spec.hidden else "visible",
            }
        )
        for entry in usage[mark:]:
            entry.setdefault("task", spec.task)
    apply_forbidden(results, usage, getattr(sandbox, "homework", "this homework"))
    return results


def usage_summary(usage: list[dict]) -> dict:
    """What a submission loaded, for the result: ``imports`` and ``forbidden_use``.

    Both are ``{"module_level": [...], "by_task": {task: [...]}}``: modules
    first loaded while ``submission.py`` was imported, and while the calls of
    each task's checks ran (harness calls included). ``imports`` lists every
    module loaded, ``forbidden_use`` the forbidden ones the code tried to load.
    """
    out: dict = {}
    for key, source in (("imports", "imports"), ("forbidden_use", "forbidden")):
        module_level: dict = {}
        by_task: dict = {}
        for entry in usage:
            names = entry.get(source, [])
            if entry.get("during") == "import":
                module_level.update(dict.fromkeys(names))
            elif names:
                by_task.setdefault(str(entry.get("task", "?")), {}).update(dict.fromkeys(names))
        out[key] = {
            "module_level": list(module_level),
            "by_task": {task: list(names) for task, names in by_task.items()},
        }
    return out


def apply_forbidden(results: list[dict], usage: list[dict], homework: str) -> None:
    """Give 0 points to every check of a task that used a forbidden module.

    A call that loads (or tries to load) a forbidden module taints the task of
    the check that made the call; loading one while ``submission.py`` is
    imported taints every task, because module-level code cannot be attributed
    to one task. Affected checks become ``fail`` with a message saying why.
    """
    used = usage_summary(usage)["forbidden_use"]
    for result in results:
        if used["module_level"]:
            names = ", ".join(used["module_level"])
            why = (
                f"0 points: submission.py imports {names} at module level, which {homework} "
                "does not allow (every task scores 0); implement the tasks yourself"
            )
        elif result["task"] in used["by_task"]:
            names = ", ".join(used["by_task"][result["task"]])
            why = (
                f"0 points: your code for task {result['task']} used {names}, which {homework} "
                "does not allow; implement the task yourself"
            )
        else:
            continue
        result["score"] = 0.0
        if result["status"] == "pass":
            result["status"] = "fail"
        result["message"] = why + (f"\n{result['message']}" if result["message"] else "")


def _summarise(
    hw: Homework, student: str, checks: list[dict], sandbox: Sandbox, unsafe: bool = False
) -> dict:
    return {
        "homework": hw.id,
        "slug": hw.slug,
        "student": student,
        "score": float(sum(c["score"] for c in checks)),
        "max_score": float(sum(c["max_score"] for c in checks)),
        "checks": checks,
        "output": sandbox.output,
        "sandbox": sandbox.defences,
        "isolation": describe(sandbox.defences, unsafe) if sandbox.defences else "",
        "worker_starts": sandbox.starts,
        **usage_summary(sandbox.usage),
    }


def _as_homework(hw: str | Homework, root) -> Homework:
    if isinstance(hw, Homework):
        return hw
    return resolve_homework(hw, root)


def _submission_file(given, name: str, expected: str) -> Path:
    """``given`` or ``given/submission.py``; ``ValueError`` naming ``name`` when missing."""
    path = Path(given)
    if path.is_dir():
        path = path / "submission.py"
    if not path.is_file():
        raise ValueError(f"{name}: {expected}, got {path}")
    return path


def _run_sandboxed(hw: Homework, submission: Path, specs: list[CheckSpec], reference, *,
                   hide: list | None = None, limits: Limits | None = None, slot: int = 0,
                   require_isolation: bool = True) -> tuple[list[dict], Sandbox]:
    """Run ``specs`` on ``submission`` in a fresh :class:`Sandbox` (``solutions/`` and
    ``hide`` hidden from it) and close it; returns the check results and the closed
    sandbox (its output, defences and usage go into the summary)."""
    sandbox = Sandbox(
        submission,
        hw.harness_file(),
        hide=[str(hw.root / "solutions"), *(hide or [])],
        limits=limits or Limits(),
        slot=slot,
        forbidden=list(hw.forbidden_modules),
        homework=hw.id,
        require_isolation=require_isolation,
    )
    try:
        checks = run_checks(specs, sandbox, reference)
    finally:
        sandbox.close()
        sandbox.release_uid()
    return checks, sandbox


def grade_submission(
    hw: str | Homework,
    submission_path: str | Path,
    include_hidden: bool = True,
    *,
    root: str | Path | None = None,
    student: str | None = None,
    limits: Limits | None = None,
    hide: list | None = None,
    slot: int = 0,
    reference: LiveReference | None = None,
    specs: list[CheckSpec] | None = None,
    unsafe_no_isolation: bool = False,
    snapshot: CodeSnapshot | None = None,
) -> dict:
    """Grade one ``submission.py`` against the master copy in ``solutions/``.

    Args:
        hw: ``"hw1"``, a slug, or a :class:`Homework`.
        submission_path: the student's ``submission.py`` (or a folder holding it).
        include_hidden: also run ``checks/hidden.py``.
        root: course repository (default: found from the current folder upwards).
        student: name recorded in the result (default: the folder's name).
        limits, hide, slot: sandbox settings (see :class:`Sandbox`); ``solutions/``
            is always hidden from the student.
        reference, specs: reuse a loaded reference / check list across a batch.
        unsafe_no_isolation: grade even where student code cannot be confined
            to the file-system allow-list (:func:`~coursekit.grading.isolation.require`);
            otherwise that raises :class:`~coursekit.grading.isolation.IsolationUnavailable`.
        snapshot: the grading code and checks as they were when grading
            started (:class:`~coursekit.grading.integrity.CodeSnapshot`; default:
            taken now); verified before the result is returned, raising
            :class:`~coursekit.grading.integrity.TamperingDetected` on a change.

    Returns the result dict described in the module docstring; its ``"isolation"``
    says which protections the student's worker ran under.
    """
    hw = _as_homework(hw, root)
    if hw.master_dir is None:
        raise ValueError(
            f"grade_submission: {hw.slug} has no solutions/ copy here; "
            "students use run_public_checks instead"
        )
    path = _submission_file(submission_path, "submission_path",
                            "expected a submission.py file")
    require(unsafe_no_isolation)
    specs = specs if specs is not None else load_checks(hw, include_hidden=include_hidden)
    reference = reference or LiveReference(hw.master_dir, hw.harness_file())
    snapshot = snapshot if snapshot is not None else CodeSnapshot.take(hw)
    snapshot.verify()
    checks, sandbox = _run_sandboxed(hw, path, specs, reference, hide=hide, limits=limits,
                                     slot=slot, require_isolation=not unsafe_no_isolation)
    snapshot.verify()
    student = student or path.resolve().parent.name
    return _summarise(hw, student, checks, sandbox, unsafe_no_isolation)


def run_public_checks(
    hw: str | Homework,
    task: str | None = None,
    path: str | Path | None = None,
    *,
    root: str | Path | None = None,
    limits: Limits | None = None,
    verbose: bool = True,
) -> dict:
    """Run the PUBLIC checks on a student's file and print a friendly report.

    Works without ``solutions/``: expected values come from the released
    ``homework/<hw>/checks/public_expected.json``. Usable in a notebook (save
    ``submission.py`` first: the checks run a fresh process that reads the file).

    Args:
        hw: ``"hw1"`` or a slug.
        task: only the checks of this task (e.g. ``"1a"``).
        path: the submission file (default ``homework/<slug>/submission.py``).
        verbose: print the report (the result dict is returned either way).
    """
    hw = _as_homework(hw, root)
    specs = load_checks(hw, include_hidden=False, released=True)
    if task is not None:
        if task not in hw.tasks:
            raise ValueError(f"task: expected one of {sorted(hw.tasks)}, got {task!r}")
        specs = [s for s in specs if s.task == task]
    submission = _submission_file(path if path is not None else hw.released_dir, "path",
                                  "expected your submission.py")
    # a student's own code on the student's own machine: confined where the OS allows,
    # never refused for lack of isolation
    checks, sandbox = _run_sandboxed(hw, submission, specs, ReplayReference(hw.expected_file),
                                     limits=limits, require_isolation=False)
    result = _summarise(hw, "you", checks, sandbox)
    if verbose:
        print(format_report(result, hw.tasks))
    return result


def _fmt_points(x: float) -> str:
    return f"{x:g}"


def format_report(result: dict, tasks: dict | None = None) -> str:
    """Per-task, per-check report with points and failure messages (no tracebacks)."""
    lines = [
        f"{result['homework']}: {_fmt_points(result['score'])} / "
        f"{_fmt_points(result['max_score'])} points"
    ]
    by_task: dict[str, list] = {}
    for c in result["checks"]:
        by_task.setdefault(c["task"], []).append(c)
    marks = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "timeout": "TIMEOUT"}
    for task, checks in by_task.items():
        got = sum(c["score"] for c in checks)
        total = sum(c["max_score"] for c in checks)
        name = f" {tasks[task]}" if tasks and task in tasks else ""
        lines.append(f"\nTask {task}{name}: {_fmt_points(got)} / {_fmt_points(total)}")
        for c in checks:
            lines.append(
                f"  [{marks.get(c['status'], c['status'])}] {c['id']} ({c['title']}): "
                f"{_fmt_points(c['score'])}/{_fmt_points(c['max_score'])}"
            )
            if c["message"]:
                for text in c["message"].splitlines():
                    lines.append(f"      {text}")
    if result.get("output"):
        lines.append("\nYour code printed (first lines):")
        lines += ["  | " + t for t in result["output"].splitlines()[:20]]
    return "\n".join(lines)
