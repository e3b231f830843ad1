"""Is the trusted process running the grading code it expects?

Student code must never change what decides grades. The sandbox makes that
impossible where it can confine the student (:mod:`coursekit.grading.isolation`);
this module detects it where something went wrong anyway (an older grader, a
run with ``--unsafe-no-isolation``, another program):

* :data:`STARTUP` hashes the grading code (``coursekit/grading/*.py``) when
  the trusted process imports it, i.e. the code it is running;
* :meth:`CodeSnapshot.take` adds the homework's master files (reference
  solution, ``homework.json``, every ``checks/*.py``) when grading starts;
* :meth:`CodeSnapshot.verify`, called before each result is scored and
  written, re-reads those files, checks that every loaded ``coursekit.grading``
  module was imported from the hashed package, and raises
  :class:`TamperingDetected` naming what changed. The batch stops: nothing
  graded by (or after) tampered code is recorded, and the message tells the
  instructor to restore the files (e.g. ``git status``) before grading again.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import coursekit

PACKAGE = Path(coursekit.__file__).resolve().parent


class TamperingDetected(RuntimeError):
    """The grading code or the homework's checks changed while grading."""


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def grading_files(package: Path = PACKAGE) -> list[Path]:
    """The files whose code decides grades in the trusted process."""
    return sorted((package / "grading").glob("*.py"))


def homework_files(hw) -> list[Path]:
    """The master copy's reference, metadata and checks of ``hw`` (a Homework)."""
    files: list[Path] = []
    if getattr(hw, "master_dir", None) is not None:
        master = Path(hw.master_dir)
        files += [master / "submission.py", master / "homework.json"]
        files += sorted((master / "checks").glob("*.py"))
    return files


class CodeSnapshot:
    """sha256 of a set of files, to compare with the disk later."""

    def __init__(self, files: list[Path], package: Path = PACKAGE):
        self.package = package
        self.hashes = {str(path): _digest(path) for path in files}

    @classmethod
    def take(cls, hw=None, base: CodeSnapshot | None = None) -> CodeSnapshot:
        """The grading code as imported (``base``, default :data:`STARTUP`) + ``hw``'s files."""
        base = base if base is not None else STARTUP
        snap = cls([], base.package)
        snap.hashes = dict(base.hashes)
        for path in homework_files(hw) if hw is not None else []:
            snap.hashes[str(path)] = _digest(path)
        return snap

    def changes(self) -> list[str]:
        """Files that differ from the snapshot, and grading modules loaded from elsewhere."""
        out = []
        for name, digest in sorted(self.hashes.items()):
            now = _digest(Path(name))
            if now != digest:
                out.append(f"{name} ({'deleted' if now is None else 'changed'})")
        package = str(self.package / "grading")
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if name.startswith("coursekit.grading") and isinstance(file, str):
                real = str(Path(file).resolve())
                if not real.startswith(package):
                    out.append(f"{name} imported from {real}, not from {package}")
        return out

    def verify(self, what: str = "grading") -> None:
        """Raise :class:`TamperingDetected` when anything in :meth:`changes`."""
        changed = self.changes()
        if changed:
            raise TamperingDetected(
                f"{what} stopped: the grading code or the homework's checks changed on disk "
                f"since grading started ({'; '.join(changed[:20])}"
                f"{'; ...' if len(changed) > 20 else ''}). Results graded from now on could be "
                "decided by that code, so none was recorded. Restore these files (e.g. "
                "`git status` / `git checkout`), find out who changed them, and grade again"
            )


STARTUP = CodeSnapshot(grading_files())
