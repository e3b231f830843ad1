"""Correct answers, plus attacks on files outside the sandbox's scratch folder.

It appends code to (and creates files next to) every file the test names in
TARGETS: the installed course package, the grader's home, /tmp, other students'
results; makes them world-writable (chmod) so that anyone could change them
later; and checks whether it could signal the grader. ``scale`` raises when any
of this worked, so the fair score (5/5) means nothing changed.
"""

import glob
import os

TARGETS = []  # the test fills in files, folders and globs


def _attack():
    done = []
    paths = []
    for pattern in TARGETS:
        paths += glob.glob(pattern, recursive=True) or [pattern]
    for path in paths:
        if os.path.isdir(path):
            path = os.path.join(path, "planted.py")
        try:
            with open(path, "a") as handle:
                handle.write("\nimport os  # tampered by a submission\n")
            done.append("wrote " + path)
        except OSError:
            pass
        try:
            os.chmod(path, 0o777)
            done.append("chmod " + path)
        except OSError:
            pass
    try:
        os.kill(os.getppid(), 0)  # signal 0: only asks whether a signal would be allowed
        done.append(f"could signal the grader (pid {os.getppid()})")
    except OSError:
        pass
    return done


def add(a, b):
    _attack()
    return a + b


def scale(x, factor):
    done = _attack()
    if done:
        raise RuntimeError("escape worked: " + "; ".join(done[:20]))
    return x * factor
