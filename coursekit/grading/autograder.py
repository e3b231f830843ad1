"""Gradescope entry point (run by the bundle's ``run_autograder``).

``python -m coursekit.grading.autograder --source S --submission D --results R --homework H``
grades the shallowest ``submission.py`` under ``D`` against ``S/solutions/<H>``
and ALWAYS writes ``R``: when anything goes wrong it writes a results.json with
score 0 and the error as the output, and exits 0 (Gradescope shows the output).

It grades with :func:`~coursekit.grading.grader.grade_submission`, i.e. the same
sandbox as ``coursekit grade``: where student code cannot be confined
(:mod:`coursekit.grading.isolation`) it refuses, and the upload gets 0 with a
message for the course staff, unless the environment variable
``COURSEKIT_AG_UNSAFE_NO_ISOLATION=1`` says to grade anyway. The protections
applied are printed to stdout (Gradescope's log, hidden from students).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path


def run(source: Path, submission_dir: Path, results: Path, homework: str) -> dict:
    """Grade and return the Gradescope results dict (raises on infrastructure errors)."""
    from coursekit.grading.batch import gradescope_results
    from coursekit.grading.grader import grade_submission
    from coursekit.grading.locate import find_submission

    file, _ = find_submission(submission_dir)
    if file is None:
        return {
            "score": 0.0,
            "output": "No submission.py was found in your upload. Upload the file "
            "submission.py from your homework folder.",
            "tests": [],
        }
    unsafe = os.environ.get("COURSEKIT_AG_UNSAFE_NO_ISOLATION", "") == "1"
    result = grade_submission(
        homework,
        file,
        include_hidden=True,
        root=source,
        student="student",
        unsafe_no_isolation=unsafe,
    )
    print(f"isolation: {result.get('isolation') or 'n/a'}")
    return gradescope_results(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coursekit-autograder")
    parser.add_argument("--source", required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--homework", required=True)
    args = parser.parse_args(argv)
    results = Path(args.results)
    from coursekit.grading.batch import write_json_atomic

    try:
        data = run(Path(args.source), Path(args.submission), results, args.homework)
    except Exception as err:  # noqa: BLE001  (always leave a results.json behind)
        traceback.print_exc(file=sys.stderr)
        data = {
            "score": 0.0,
            "output": f"The autograder failed ({type(err).__name__}: {err}). "
            "Your submission was not graded; please contact the course staff.",
            "tests": [],
        }
    write_json_atomic(results, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
