def add(a, b):
    while True:
        pass


def scale(x, factor):
    return x * factor
