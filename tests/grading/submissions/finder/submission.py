"""Implements nothing: searches the file system for a copy of the reference solution
(``solutions/hw0_fake/submission.py``) and answers with it. Scores 0 unless it finds one."""

import importlib.util
import os
import time

GUESSES = []  # the test fills in the exact places where it planted copies
WANT = os.path.join("solutions", "hw0_fake")
ROOTS = ["/", "/tmp", "/home", "/root", "/work", "/srv", "/opt", "/mnt", "/var/tmp"]


def _search(budget=2.0):
    deadline = time.monotonic() + budget
    candidates = list(GUESSES)
    folders = 0
    roots = ROOTS + [os.path.expanduser("~")] + [os.path.dirname(p) for p in GUESSES]
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            folders += 1
            if dirpath in ("/proc", "/sys", "/dev") or time.monotonic() > deadline:
                dirnames[:] = []
            if dirpath.endswith(WANT) and "submission.py" in filenames:
                candidates.append(os.path.join(dirpath, "submission.py"))
    found = []
    for path in dict.fromkeys(candidates):
        try:
            with open(path) as handle:
                handle.read()
            found.append(path)
        except OSError:
            pass
    return found, folders


def _reference():
    found, folders = _search()
    print(f"finder: {folders} folders listed, readable copies: {found}", flush=True)
    for path in found:
        spec = importlib.util.spec_from_file_location("stolen_reference", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    raise NotImplementedError(f"found no readable copy of the reference ({folders} folders listed)")


def add(a, b):
    return _reference().add(a, b)


def scale(x, factor):
    return _reference().scale(x, factor)
