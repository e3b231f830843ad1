import sys

print("hello from import")


def add(a, b):
    for _ in range(2000):
        sys.stdout.write("x" * 10000 + "\n")
    return a + b


def scale(x, factor):
    return x * factor
