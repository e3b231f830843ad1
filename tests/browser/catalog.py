"""Which notebooks the browser tests open, and where the test server serves them.

The server's root is a temporary copy (see conftest.py): ``lectures/`` is
copied to ``<root>/lectures/``, ``benchmarks/results/`` (the recorded results some
lectures read as ``../benchmarks/results``) to ``<root>/benchmarks/results/`` and
``tests/browser/fixtures/`` to ``<root>/browser-fixtures/``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LECTURES = ROOT / "lectures"
RESULTS = ROOT / "benchmarks" / "results"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_PREFIX = "browser-fixtures"


def _notebooks(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def lecture_notebooks() -> list[Path]:
    return _notebooks(LECTURES)


def fixture_notebooks() -> list[Path]:
    return _notebooks(FIXTURES)


def served_path(nb: Path) -> str:
    """The notebook's path relative to the test server's root."""
    nb = nb.resolve()
    if nb.is_relative_to(FIXTURES):
        return f"{FIXTURE_PREFIX}/{nb.relative_to(FIXTURES).as_posix()}"
    return nb.relative_to(ROOT).as_posix()


def code_cells(nb: Path) -> list[str]:
    data = json.loads(nb.read_text(encoding="utf-8"))
    cells = []
    for cell in data.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else src)
    return cells


def collapsed_code_cells(nb: Path) -> set[int]:
    """Indices (among the code cells) of cells stored with their source collapsed
    (``metadata.jupyter.source_hidden``: the worked answers of the Try-it exercises).
    JupyterLab shows no input prompt, so no execution count, for such a cell."""
    data = json.loads(nb.read_text(encoding="utf-8"))
    code = [c for c in data.get("cells", []) if c.get("cell_type") == "code"]
    return {i for i, c in enumerate(code)
            if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")}


def uses_widgets(nb: Path) -> bool:
    """True when the notebook's code uses ``coursekit.widgets``."""
    return any("coursekit.widgets" in src for src in code_cells(nb))


def widget_notebooks() -> list[Path]:
    """Lecture notebooks that show a coursekit widget, plus the fixture notebooks."""
    return [nb for nb in lecture_notebooks() if uses_widgets(nb)] + fixture_notebooks()


def run_all_notebooks() -> list[Path]:
    """Every lecture notebook; the fixtures when lectures/ has none yet (never an empty list)."""
    return lecture_notebooks() or fixture_notebooks()


def constructor_calls(nb: Path, class_name: str) -> list[dict] | None:
    """Keyword arguments of every ``class_name(...)`` call in the notebook's code,
    in source order, when all arguments are literals (positional ones are
    returned under the keys ``0``, ``1``, ...). Calls with non-literal
    arguments are left out. IPython magics and shell lines are ignored."""
    calls = []
    for src in code_cells(nb):
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name != class_name:
                continue
            try:
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
                kwargs.update({i: ast.literal_eval(a) for i, a in enumerate(node.args)})
            except (ValueError, TypeError, SyntaxError):
                continue
            if None in kwargs:  # **kwargs
                continue
            calls.append(kwargs)
    return calls
