import torch

WEIGHTS = torch.ones(3) @ torch.ones(4)


def add(a, b):
    return a + b
