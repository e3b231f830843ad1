def add(a, b):
    return a + b


def scale(x, factor):
    return x * factor
