import torch


def add(a, b):
    out = a + b
    out[1] = float("nan")
    return out


def scale(x, factor):
    return (x * factor).reshape(-1, 1)
