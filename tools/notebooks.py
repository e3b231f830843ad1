"""Developer tool for the course notebooks.

    python tools/notebooks.py strip  [PATH...]   # remove outputs and execution counts
    python tools/notebooks.py run    PATH...      # execute in a fresh kernel, print wall time

With no PATH, ``strip`` cleans every notebook under lectures/, solutions/ and
homework/. ``run`` executes with the notebook's folder as working directory,
like the test suite does, and fails on the first error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("lectures", "solutions", "homework")


def all_notebooks() -> list[Path]:
    found = []
    for folder in NOTEBOOK_DIRS:
        found += sorted(p for p in (ROOT / folder).rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts)
    return found


def strip(path: Path) -> bool:
    """Clear outputs, execution counts and volatile metadata; True if the file changed."""
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
    nb.metadata.pop("widgets", None)
    new = nbformat.writes(nb) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def run(path: Path, timeout: int = 600) -> float:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("strip", "run"):
        print(__doc__)
        return 2
    paths = [Path(p).resolve() for p in argv[1:]]
    if argv[0] == "strip":
        for p in paths or all_notebooks():
            if strip(p):
                print(f"stripped {p.relative_to(ROOT)}")
        return 0
    for p in paths:
        seconds = run(p)
        print(f"{p.relative_to(ROOT)}: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
