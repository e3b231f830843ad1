import sys

sys.exit("bye")


def add(a, b):
    return a + b
