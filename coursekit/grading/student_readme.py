"""The ``README.md`` of the student distribution (``coursekit release --student-dist``).

Written for students: what is inside, how to open it, how to check a homework,
how to submit. It lists the lectures and homework actually shipped (titles from
each notebook's first heading and each ``homework.json``) and links only to
files of the distribution. Kept as Python, not as a Markdown file, so that it is
available wherever ``coursekit`` is installed and is never mistaken for a
shipped document.
"""

from __future__ import annotations

import json
from pathlib import Path

HEADER = """\
# Deep generative models: course materials

Lecture notebooks you step through in JupyterLab, homework with checks you can
run yourself, and `coursekit`, the small PyTorch library they all import.
Everything runs offline on a laptop CPU; on a GPU the notebooks pick bigger
settings by themselves.

## Open the course

You need Python 3.10 or newer. In this folder, run:

```bash
python3 course.py lab
```

The first run creates a virtual environment in `.venv`, installs `coursekit`
and JupyterLab into it (a few minutes, and it needs a network connection once:
PyTorch is the big download) and opens the first lecture in your browser. Later
runs skip the installation and work offline. Stop JupyterLab with Ctrl-C
twice. If something does not work, `.venv/bin/coursekit doctor` reports what
your machine has (on Windows: `.venv\\Scripts\\coursekit doctor`).

## What is inside

| path | what it is |
|---|---|
| `course.py` | sets up and opens the course (the command above) |
| `lectures/` | one notebook per lecture |
| `homework/` | one folder per homework |
| `coursekit/` | the library the notebooks import |
| `pyproject.toml` | what `course.py` installs |
| [`LICENSE`](LICENSE) | MIT licence |

Lectures:

"""

HOMEWORK = """
## Doing a homework

Each homework folder holds a guided notebook and `submission.py`, the only file
you hand in. Write your code in `submission.py` where a function raises
`NotImplementedError`; keep the function names and arguments as they are.
Check your work at any time from this folder:

```bash
.venv/bin/coursekit check {first}              # every public check of {first}
.venv/bin/coursekit check {first} --task {task}    # only task {task}
```

After `source .venv/bin/activate` (Windows: `.venv\\Scripts\\activate`), plain
`coursekit check {first}` works from any folder inside this one.
It prints your points per task and, for every failed check, what was expected
and what your code returned. In a notebook, save `submission.py` first, then run
`from coursekit.grading import run_public_checks; run_public_checks("{first}")`.
The public checks are a part of the grading: your grade also counts hidden
checks on other inputs, so passing every public check does not guarantee full
marks.

## Submitting

Hand in your `submission.py` (for example
`homework/{slug}/submission.py`) the way your course tells you,
for example by uploading it to Gradescope. Only this file is graded: code you
put in the notebook is not.
"""


def _lecture_title(notebook: Path) -> str:
    """The first Markdown heading of a notebook, without its ``#``; the file name if none."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except ValueError:
        cells = []
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return notebook.stem


def student_readme(dist: Path) -> str:
    """The README text for the distribution in ``dist`` (its lectures and homework
    must already be there): every lecture and homework linked by a relative path."""
    dist = Path(dist)
    lines = [HEADER]
    lectures = sorted((dist / "lectures").glob("*.ipynb"))
    for notebook in lectures:
        rel = notebook.relative_to(dist).as_posix()
        lines.append(f"- [{_lecture_title(notebook)}]({rel})\n")
    if not lectures:
        lines.append("- (none yet)\n")
    lines.append("\nHomework (open the notebook, write your code in `submission.py`):\n\n")
    metas = []
    for meta_file in sorted((dist / "homework").glob("*/homework.json")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        folder = meta_file.parent
        metas.append(meta)
        notebook = folder / f"{folder.name}.ipynb"
        link = notebook if notebook.is_file() else folder / "submission.py"
        rel = link.relative_to(dist).as_posix()
        lines.append(
            f"- `{meta['id']}`: [{meta.get('title', folder.name)}]({rel}); "
            f"check it with `.venv/bin/coursekit check {meta['id']}`\n"
        )
    if metas:
        first = metas[0]
        lines.append(
            HOMEWORK.format(first=first["id"], task=next(iter(first["tasks"])), slug=first["slug"])
        )
    return "".join(lines)
