"""``coursekit release``: generate the student copy of a homework from its master copy.

For ``solutions/<slug>/`` this writes ``homework/<slug>/`` with

* every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region (in ``.py`` files
  and notebook code cells) replaced by ``raise NotImplementedError(hint)`` at the
  region's indentation; an optional ``### HINT: text`` line directly before
  ``BEGIN`` gives the hint (default ``"write this function"``);
* ``checks/hidden.py`` left out;
* ``checks/public_expected.json``: the reference solution's result for every
  ``ctx.reference`` call of every public check, recorded by running the public
  checks with the reference solution playing the student (release fails if the
  reference solution does not pass its own public checks).

Output is deterministic: same input, byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from coursekit.grading.checks import CheckContext, CheckFailure
from coursekit.grading.homework import (
    Homework,
    find_root,
    list_homeworks,
    load_checks,
    resolve_homework,
)
from coursekit.grading.reference import InProcessCaller, LiveReference, RecordingReference

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
DEFAULT_HINT = "write this function"
SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"}
SECRET_FILES = {Path("checks") / "hidden.py"}
MANIFEST = ".release-manifest.json"
EXPECTED_FILE = "checks/public_expected.json"


def strip_solutions(text: str, source: str = "<text>") -> str:
    """Replace every solution region of ``text`` by ``raise NotImplementedError(hint)``.

    Raises ``ValueError`` naming ``source`` and the line for a BEGIN without END,
    an END without BEGIN, nested regions or BEGIN/END at different indentation.
    """
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped == END:
            raise ValueError(f"{source}, line {i + 1}: {END} without a {BEGIN} before it")
        if stripped != BEGIN:
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        hint = DEFAULT_HINT
        if out and out[-1].strip().startswith(HINT):
            hint = out.pop().strip()[len(HINT) :].strip() or DEFAULT_HINT
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            if lines[j].strip() == BEGIN:
                raise ValueError(f"{source}, line {j + 1}: nested {BEGIN} (line {i + 1} is open)")
            j += 1
        if j == len(lines):
            raise ValueError(f"{source}, line {i + 1}: {BEGIN} without a matching {END}")
        end_indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
        if end_indent != indent:
            raise ValueError(
                f"{source}, line {j + 1}: {END} is indented differently from its {BEGIN} "
                f"(line {i + 1})"
            )
        newline = "\n" if lines[i].endswith("\n") else ""
        out.append(f"{indent}raise NotImplementedError({hint!r}){newline}")
        i = j + 1
    return "".join(out)


def solution_regions(text: str) -> list[str]:
    """The text of every solution region (for leak tests and checks)."""
    regions, current = [], None
    for line in text.splitlines():
        if line.strip() == BEGIN:
            current = []
        elif line.strip() == END and current is not None:
            regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return regions


def _strip_notebook(text: str, source: str) -> str:
    nb = json.loads(text)
    for number, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        joined = "".join(src) if isinstance(src, list) else src
        if BEGIN not in joined and END not in joined:
            continue
        new = strip_solutions(joined, f"{source} (cell {number})")
        cell["source"] = new.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _release_file(src: Path, dst: Path, rel: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".py":
        text = src.read_text(encoding="utf-8")
        dst.write_text(strip_solutions(text, rel), encoding="utf-8", newline="")
    elif src.suffix == ".ipynb":
        text = src.read_text(encoding="utf-8")
        dst.write_text(_strip_notebook(text, rel), encoding="utf-8", newline="")
    else:
        shutil.copyfile(src, dst)


def record_expected(hw: Homework) -> str:
    """Run the public checks with the reference solution as the student; return the
    recorded reference values as JSON text. Raises ``ValueError`` if a check fails."""
    specs = load_checks(hw, include_hidden=False)
    live = LiveReference(hw.master_dir, hw.harness_file())
    recorder = RecordingReference(live)
    caller = InProcessCaller(live)
    for spec in specs:
        recorder.records.setdefault(spec.id, [])
        try:
            spec.func(CheckContext(spec, caller, recorder))
        except CheckFailure as err:
            raise ValueError(
                f"{hw.slug}: public check {spec.id!r} fails on the reference solution: {err}"
            ) from err
    return recorder.dumps()


def _sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _released_files(folder: Path) -> list[str]:
    """Relative paths of the files in a released folder, caches and the manifest left out."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and not SKIP_NAMES & set(p.relative_to(folder).parts)
        and p.relative_to(folder).as_posix() != MANIFEST
    )


def _write_manifest(folder: Path) -> None:
    """Record the sha256 of every file release wrote (``public_expected.json`` aside: it is
    regenerated data whose last bits vary across machines, never edited by hand)."""
    files = {rel: _sha256(folder / rel) for rel in _released_files(folder) if rel != EXPECTED_FILE}
    manifest = {
        "written_by": "coursekit release",
        "sha256": "of each file as released",
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def changed_files(old: Path, new: Path) -> list[str]:
    """Files of the released folder ``old`` that replacing it by ``new`` would lose.

    A file is lost when the new release does not write the same bytes and it has
    changed since the last release: its sha256 differs from the one in ``old``'s
    manifest, or it is not in the manifest (a file someone added). Without a
    manifest (a folder released before manifests existed), every file that differs
    from the new release counts. Caches (``__pycache__``, checkpoints) and
    ``public_expected.json`` are always replaced.
    """
    if not old.is_dir():
        return []
    try:
        recorded = json.loads((old / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    lost = []
    for rel in _released_files(old):
        if rel == EXPECTED_FILE:
            continue
        if (new / rel).is_file() and (new / rel).read_bytes() == (old / rel).read_bytes():
            continue
        if recorded is None or recorded.get(rel) != _sha256(old / rel):
            lost.append(rel)
    return lost


def _build_release(hw: Homework, out_dir: Path) -> Path:
    """Write the released copy of ``hw`` into a fresh folder next to ``out_dir``; return it."""
    if hw.master_dir is None:
        raise ValueError(f"release: {hw.slug} has no solutions/ copy to release from")
    tmp = out_dir.with_name(out_dir.name + ".releasing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for src in sorted(hw.master_dir.rglob("*")):
            rel = src.relative_to(hw.master_dir)
            if any(part in SKIP_NAMES for part in rel.parts) or rel in SECRET_FILES:
                continue
            if src.is_file():
                _release_file(src, tmp / rel, f"{hw.slug}/{rel.as_posix()}")
        expected = record_expected(hw)
        (tmp / "checks").mkdir(exist_ok=True)
        (tmp / EXPECTED_FILE).write_text(expected, encoding="utf-8")
        _write_manifest(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _replace(tmp: Path, out_dir: Path) -> None:
    """Put the finished release ``tmp`` in the place of ``out_dir``."""
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)


def release_homework(hw: Homework, out_dir: str | Path, force: bool = False) -> list[Path]:
    """Write the released copy of ``hw`` into ``out_dir`` (replacing it); return its files.

    Raises ``ValueError`` naming the files, and writes nothing, when replacing
    ``out_dir`` would lose a file changed since the last release
    (:func:`changed_files`), unless ``force``.
    """
    return _release_all([hw], [Path(out_dir)], force)[0]


def _release_all(homeworks: list[Homework], outs: list[Path], force: bool) -> list[list[Path]]:
    """Build every release first, refuse if any would lose changes, then replace them all."""
    built: list[Path] = []
    try:
        for hw, out_dir in zip(homeworks, outs):
            built.append(_build_release(hw, out_dir))
        if not force:
            problems = []
            for tmp, out_dir in zip(built, outs):
                lost = changed_files(out_dir, tmp)
                if lost:
                    problems.append(
                        f"{out_dir.parent.name}/{out_dir.name}: expected no changes since the "
                        f"last release, got changes in {', '.join(lost)}"
                    )
            if problems:
                raise ValueError(
                    f"{'; '.join(problems)}. Nothing was written: copy your changes "
                    "elsewhere, or pass --force to overwrite them"
                )
    except BaseException:
        for tmp in built:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for tmp, out_dir in zip(built, outs):
        _replace(tmp, out_dir)
    return [sorted(p for p in out_dir.rglob("*") if p.is_file()) for out_dir in outs]


def release(
    names: list[str] | None = None,
    root: str | Path | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Release the named homeworks (default: all in ``solutions/``) into
    ``out`` (default ``<root>/homework``); returns the released folders.

    Refuses (``ValueError``, nothing written) to replace a released file changed
    since the last release, unless ``force``; see :func:`changed_files`.
    """
    root = find_root(root)
    if not names:
        names = [s for s in list_homeworks(root) if (root / "solutions" / s).is_dir()]
        if not names:
            raise ValueError(f"release: no homework found under {root / 'solutions'}")
    out = Path(out) if out is not None else root / "homework"
    homeworks = [resolve_homework(name, root) for name in names]
    folders = [out / hw.slug for hw in homeworks]
    _release_all(homeworks, folders, force)
    return folders


DIST_REQUIRED = ("course.py", "pyproject.toml")
DIST_FILES = (*DIST_REQUIRED, "LICENSE")
DIST_DIRS = ("coursekit", "lectures")


def check_dist_target(out_dir: str | Path, root: str | Path | None = None) -> None:
    """Raise ``ValueError`` when :func:`student_dist` cannot write into ``out_dir``."""
    root = find_root(root)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"--student-dist: expected an empty or new folder, got {out_dir}")
    if out_dir.resolve() == root:
        raise ValueError(f"--student-dist: expected a folder other than the course, got {out_dir}")
    for name in DIST_REQUIRED:
        if not (root / name).is_file():
            raise ValueError(
                f"--student-dist: expected {name} in {root} (students need it), got none"
            )


def student_dist(out_dir: str | Path, root: str | Path | None = None) -> Path:
    """Write exactly what students receive into ``out_dir`` (must not exist or be empty).

    Contents: ``course.py`` (the first command, ``python3 course.py lab``),
    ``pyproject.toml`` (what it installs), ``LICENSE``, a ``README.md`` written
    for students (:mod:`coursekit.grading.student_readme`), ``lectures/``, a
    fresh release of every homework in ``homework/`` and the ``coursekit/``
    package. Never ``solutions/``, hidden checks, tests, docs or the
    instructors' README.
    """
    from coursekit.grading.student_readme import student_readme

    root = find_root(root)
    check_dist_target(out_dir, root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def ignore(folder, names):
        return [n for n in names if n in SKIP_NAMES or n.endswith((".pyc", ".egg-info"))]

    package = Path(__file__).resolve().parents[1]  # the coursekit package being run
    for name in DIST_DIRS:
        source = root / name
        if name == "coursekit" and not source.is_dir():
            source = package
        if source.is_dir():
            shutil.copytree(source, out_dir / name, ignore=ignore)
    for name in DIST_FILES:
        if (root / name).is_file():
            shutil.copyfile(root / name, out_dir / name)
    masters = [s for s in list_homeworks(root) if (root / "solutions" / s).is_dir()]
    (out_dir / "homework").mkdir(exist_ok=True)
    for slug in masters:
        release_homework(resolve_homework(slug, root), out_dir / "homework" / slug)
    released_only = [s for s in list_homeworks(root) if s not in masters]
    for slug in released_only:
        shutil.copytree(root / "homework" / slug, out_dir / "homework" / slug, ignore=ignore)
    (out_dir / "README.md").write_text(student_readme(out_dir), encoding="utf-8")
    return out_dir
