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


def release_homework(hw: Homework, out_dir: str | Path) -> list[Path]:
    """Write the released copy of ``hw`` into ``out_dir`` (replacing it); return its files."""
    if hw.master_dir is None:
        raise ValueError(f"release: {hw.slug} has no solutions/ copy to release from")
    out_dir = Path(out_dir)
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
        (tmp / "checks" / "public_expected.json").write_text(expected, encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


def release(
    names: list[str] | None = None, root: str | Path | None = None, out: str | Path | None = None
) -> list[Path]:
    """Release the named homeworks (default: all in ``solutions/``) into
    ``out`` (default ``<root>/homework``); returns the released folders."""
    root = find_root(root)
    if not names:
        names = [s for s in list_homeworks(root) if (root / "solutions" / s).is_dir()]
        if not names:
            raise ValueError(f"release: no homework found under {root / 'solutions'}")
    out = Path(out) if out is not None else root / "homework"
    folders = []
    for name in names:
        hw = resolve_homework(name, root)
        release_homework(hw, out / hw.slug)
        folders.append(out / hw.slug)
    return folders


DIST_FILES = (
    "README.md",
    "pyproject.toml",
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
    "requirements.txt",
    "setup.cfg",
    "MANIFEST.in",
)
DIST_DIRS = ("coursekit", "lectures")


def student_dist(out_dir: str | Path, root: str | Path | None = None) -> Path:
    """Write exactly what students receive into ``out_dir`` (must not exist or be empty).

    Contents: ``lectures/``, a fresh release of every homework in ``homework/``,
    the ``coursekit/`` package and the top-level files needed to install it
    (README, pyproject, licence). Never ``solutions/``, hidden checks, tests or docs.
    """
    root = find_root(root)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"--student-dist: {out_dir} exists and is not empty")
    if out_dir.resolve() == root or root in out_dir.resolve().parents:
        if (out_dir.resolve() / "solutions").exists():
            raise ValueError(f"--student-dist: {out_dir} would contain solutions/")
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
    return out_dir
