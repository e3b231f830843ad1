"""Finding the course repository, resolving ``hw1`` to a homework and loading its checks."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from coursekit.grading.checks import CheckSpec, collect_checks


def find_root(root: str | Path | None = None, start: str | Path | None = None) -> Path:
    """The course repository: ``root`` if given, else the first folder from ``start``
    (default: the current folder) upwards that has a ``solutions/`` or ``homework/`` folder.
    """
    if root is not None:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"--root: expected an existing folder, got {root}")
        if not (path / "solutions").is_dir() and not (path / "homework").is_dir():
            raise ValueError(f"--root: {path} has neither a solutions/ nor a homework/ folder")
        return path
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir() or (folder / "homework").is_dir():
            return folder
    raise ValueError(
        f"could not find the course repository (a folder with solutions/ or homework/) "
        f"in {here} or above; run from inside it or pass --root"
    )


@dataclass(frozen=True)
class Homework:
    """One homework: metadata from ``homework.json`` and where its copies live.

    ``forbidden_modules`` (``homework.json`` key, optional): modules that
    implement the homework's tasks (e.g. ``coursekit.probability``); grading
    refuses to load them in the sandbox and gives 0 to every task that uses them.
    """

    id: str
    slug: str
    title: str
    tasks: dict
    root: Path
    master_dir: Path | None  # solutions/<slug>, absent on the student side
    released_dir: Path  # homework/<slug>
    forbidden_modules: tuple = ()  # modules its tasks may not delegate to

    @property
    def source_dir(self) -> Path:
        """The master copy when present, else the released copy."""
        return self.master_dir if self.master_dir is not None else self.released_dir

    def checks_file(self, kind: str, released: bool = False) -> Path:
        base = self.released_dir if released or self.master_dir is None else self.master_dir
        return base / "checks" / f"{kind}.py"

    def harness_file(self) -> Path | None:
        for base in (self.master_dir, self.released_dir):
            if base is not None and (base / "checks" / "harness.py").is_file():
                return base / "checks" / "harness.py"
        return None

    @property
    def expected_file(self) -> Path:
        return self.released_dir / "checks" / "public_expected.json"

    def max_points(self, specs: list[CheckSpec]) -> float:
        return float(sum(s.points for s in specs))


def read_meta(folder: Path) -> dict:
    """``homework.json`` of a homework folder, validated."""
    path = folder / "homework.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (every homework folder needs a homework.json)") from None
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    for key in ("id", "slug", "tasks"):
        if key not in meta:
            raise ValueError(f"{path}: expected a key {key!r}, found {sorted(meta)}")
    if not isinstance(meta["tasks"], dict) or not meta["tasks"]:
        raise ValueError(f"{path}: 'tasks' must be a non-empty object, got {meta['tasks']!r}")
    forbidden = meta.get("forbidden_modules", [])
    if not isinstance(forbidden, list) or not all(
        isinstance(name, str) and name and all(part.isidentifier() for part in name.split("."))
        for name in forbidden
    ):
        raise ValueError(
            f"{path}: 'forbidden_modules': expected a list of module names such as "
            f"'coursekit.probability', got {forbidden!r}"
        )
    return meta


def list_homeworks(root: Path) -> list[str]:
    """Slugs of every homework under ``solutions/`` and ``homework/``.

    A slug is an identifier (``hw1_probability``); other folders, such as the
    ``<slug>.releasing`` copy that a running ``coursekit release`` builds, are not
    homework.
    """
    slugs = set()
    for sub in ("solutions", "homework"):
        base = root / sub
        if base.is_dir():
            slugs |= {p.parent.name for p in base.glob("*/homework.json")
                      if p.parent.name.isidentifier()}
    return sorted(slugs)


def resolve_homework(name: str, root: str | Path | None = None) -> Homework:
    """Resolve ``hw1`` (an id), ``hw1_probability`` (a slug) or a unique slug prefix."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"homework: expected a name such as 'hw1', got {name!r}")
    root = find_root(root)
    matches = []
    for slug in list_homeworks(root):
        folder = root / "solutions" / slug
        if not (folder / "homework.json").is_file():
            folder = root / "homework" / slug
        meta = read_meta(folder)
        if name in (meta["id"], meta["slug"], slug) or slug.startswith(name + "_"):
            matches.append((slug, meta))
    if not matches:
        known = ", ".join(list_homeworks(root)) or "none"
        raise ValueError(f"homework: no homework called {name!r} in {root} (found: {known})")
    if len(matches) > 1:
        raise ValueError(f"homework: {name!r} is ambiguous: {[m[0] for m in matches]}")
    slug, meta = matches[0]
    master = root / "solutions" / slug
    return Homework(
        id=str(meta["id"]),
        slug=slug,
        title=str(meta.get("title", slug)),
        tasks=dict(meta["tasks"]),
        root=root,
        master_dir=master if master.is_dir() else None,
        released_dir=root / "homework" / slug,
        forbidden_modules=tuple(meta.get("forbidden_modules", [])),
    )


def load_module(path: Path, name: str):
    """Import a Python file as a fresh module object (not added to ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_checks(hw: Homework, include_hidden: bool, released: bool = False) -> list[CheckSpec]:
    """The homework's checks (public, then hidden), validated against ``homework.json``."""
    specs: list[CheckSpec] = []
    kinds = [("public", False)] + ([("hidden", True)] if include_hidden else [])
    for kind, hidden in kinds:
        path = hw.checks_file(kind, released=released)
        if not path.is_file():
            if kind == "hidden" and hw.master_dir is None:
                raise ValueError(
                    f"hidden checks of {hw.slug} are only in solutions/, which is not here"
                )
            if kind == "hidden":
                continue
            raise ValueError(f"{path}: missing (public checks of {hw.slug})")
        module = load_module(path, f"coursekit_checks_{hw.slug}_{kind}")
        specs += collect_checks(vars(module), hidden=hidden)
    seen = set()
    for spec in specs:
        if spec.id in seen:
            raise ValueError(f"{hw.slug}: check id {spec.id!r} is used twice")
        seen.add(spec.id)
        if spec.task not in hw.tasks:
            raise ValueError(
                f"{hw.slug}: check {spec.id!r} scores task {spec.task!r}, which is not in "
                f"homework.json's tasks {sorted(hw.tasks)}"
            )
    return specs
