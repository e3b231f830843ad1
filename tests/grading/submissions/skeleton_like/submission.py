def add(a, b):
    raise NotImplementedError("one line: add the two tensors")


def scale(x, factor):
    raise NotImplementedError("write this function")
