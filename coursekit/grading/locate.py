"""Find a student's ``submission.py`` inside an uploaded folder or zip file.

One rule for ``coursekit grade`` (zips) and the Gradescope autograder
(the upload folder): the shallowest ``submission.py`` wins (ties broken by
path), anything under a ``__MACOSX`` folder is ignored, and from a zip only
that one member is written, never another path, and at most
:data:`MAX_SUBMISSION_BYTES`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

FILENAME = "submission.py"
MAX_SUBMISSION_BYTES = 20 * 1024 * 1024


def _order(relative: PurePosixPath) -> tuple[int, str]:
    """Sort key: shallowest first, then by path."""
    return len(relative.parts), str(relative)


def _candidate(relative: PurePosixPath) -> bool:
    return relative.name == FILENAME and "__MACOSX" not in relative.parts


def find_submission(path: Path, extract_to: Path | None = None) -> tuple[Path | None, str]:
    """The shallowest ``submission.py`` in the folder or zip file ``path``.

    Returns ``(file, "")``, or ``(None, problem)`` with a student-facing reason.
    A folder's file is returned where it lies; a zip's member is extracted to
    ``extract_to/submission.py`` (required for zips; the folder is created).
    """
    path = Path(path)
    if path.is_dir():
        found = [
            p for p in path.rglob(FILENAME) if p.is_file() and _candidate(_relative(p, path))
        ]
        if not found:
            return None, f"no {FILENAME} in the folder"
        return min(found, key=lambda p: _order(_relative(p, path))), ""
    if extract_to is None:
        raise ValueError(f"extract_to: needed to extract {FILENAME} from the zip {path}")
    return _extract(path, Path(extract_to))


def _relative(file: Path, folder: Path) -> PurePosixPath:
    return PurePosixPath(file.relative_to(folder).as_posix())


def _extract(path: Path, target: Path) -> tuple[Path | None, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and _candidate(PurePosixPath(m.filename))
            ]
            if not members:
                return None, f"the zip file has no {FILENAME}"
            member = min(members, key=lambda m: _order(PurePosixPath(m.filename)))
            if member.file_size > MAX_SUBMISSION_BYTES:
                return None, f"{FILENAME} in the zip is larger than {MAX_SUBMISSION_BYTES >> 20} MB"
            target.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target / FILENAME, "wb") as dst:
                dst.write(src.read(MAX_SUBMISSION_BYTES + 1)[:MAX_SUBMISSION_BYTES])
            return target / FILENAME, ""
    except (zipfile.BadZipFile, OSError) as err:
        return None, f"the zip file could not be read ({err})"
