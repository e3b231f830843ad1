"""Time to grade 100 submissions of homework 1 with --jobs 1 and --jobs 2.

Submissions: 40 copies of the reference solution, 40 of the released skeleton,
20 "mixed" (the solution with one solution region replaced by the skeleton's
``raise NotImplementedError``). Reports wall time per batch, seconds per
submission, and the per-submission overhead = wall time per submission minus
the time spent inside checks (worker start-up, sandbox set-up, result writing).

    .venv/bin/python benchmarks/grading_bench.py [--n 100] [--out benchmarks/results/grading.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from coursekit.grading.batch import grade_batch
from coursekit.grading.homework import find_root, resolve_homework
from coursekit.grading.release import BEGIN, END, strip_solutions


def strip_one_region(text: str, index: int) -> str:
    """The solution with only its ``index``-th solution region stripped."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    start = starts[index % len(starts)]
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == END)
    region = strip_solutions("".join(lines[start : end + 1]))
    kept = [ln for ln in lines[:start] + lines[end + 1 :] if ln.strip() not in (BEGIN, END)]
    body = lines[:start] + [region] + lines[end + 1 :]
    assert kept  # (regions outside index keep their code; markers are harmless comments)
    return "".join(body)


def make_submissions(folder: Path, solution: str, skeleton: str, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        kind = i % 5
        if kind in (0, 1):
            text = solution
        elif kind in (2, 3):
            text = skeleton
        else:
            text = strip_one_region(solution, i)
        sub = folder / f"student{i:03d}"
        sub.mkdir(parents=True)
        (sub / "submission.py").write_text(text)
        paths.append(sub)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/grading.md")
    args = parser.parse_args()
    root = find_root()
    hw = resolve_homework("hw1", root)
    solution = (hw.master_dir / "submission.py").read_text()
    skeleton = strip_solutions(solution)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subs = make_submissions(Path(tmp) / "subs", solution, skeleton, args.n)
        for jobs in (1, 2):
            out = Path(tmp) / f"out{jobs}"
            start = time.perf_counter()
            outcome = grade_batch(hw, subs, out, jobs=jobs, force=True, progress=False)
            wall = time.perf_counter() - start
            in_checks = [sum(c["duration"] for c in r["checks"]) for r in outcome["results"]]
            scores = [r["score"] for r in outcome["results"]]
            per_sub = wall / args.n
            rows.append((jobs, wall, per_sub, per_sub * jobs - statistics.mean(in_checks),
                         statistics.mean(in_checks), min(scores), max(scores)))
            print(f"jobs={jobs}: {wall:.1f} s", flush=True)
    lines = [
        "# Grading benchmark",
        "",
        f"Measured {datetime.date.today().isoformat()} with `benchmarks/grading_bench.py`: "
        f"{args.n} submissions of homework 1 (40% solution, 40% skeleton, 20% one task "
        "missing), hidden checks included, `--force` (nothing skipped).",
        "",
        f"Machine: {platform.machine()}, `nproc` = {os.cpu_count()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, {platform.system()} "
        f"{'as root (private uid, namespaces)' if os.geteuid() == 0 else 'as a user'}; "
        "shared with other jobs while it ran.",
        "",
        "| --jobs | wall time (s) | s / submission | overhead / submission (s) "
        "| time in checks / submission (s) | min score | max score |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for jobs, wall, per_sub, overhead, checks, lo, hi in rows:
        lines.append(f"| {jobs} | {wall:.1f} | {per_sub:.2f} | {overhead:.2f} | {checks:.2f} "
                     f"| {lo:g} | {hi:g} |")
    lines += [
        "",
        "Overhead = (wall time x jobs / submissions) - mean time spent inside the checks: "
        "starting the worker (python + torch import, namespaces, privilege drop), "
        "copying the submission, killing the process group and writing the JSON/CSV outputs.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
