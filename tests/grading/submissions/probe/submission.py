"""Probes the sandbox from the inside (used by test_sandbox.py)."""

import os
import random
import resource
import socket

import numpy as np
import torch


def network():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        return "connected"
    except OSError as err:
        return type(err).__name__


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        return type(err).__name__


def identity():
    return {"uid": os.getuid(), "cwd": os.getcwd(), "files": sorted(os.listdir("."))}


def address_space():
    return resource.getrlimit(resource.RLIMIT_AS)[0]


def echo(*args, **kwargs):
    return [list(args), kwargs]


def generator():
    return (i for i in range(3))


def draws():
    return [random.random(), np.random.rand(3), torch.rand(2), torch.randn(2, dtype=torch.float64)]
