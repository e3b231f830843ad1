"""Runtime helpers: device choice, seeding and per-device budgets.

Every notebook starts with::

    device = coursekit.get_device("auto")
    coursekit.seed_everything(0)

and sizes its training runs with :func:`budget` so that the defaults fit the
course's 3-minute CPU budget while a GPU automatically gets bigger settings.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# where PyTorch publishes its CPU-only wheels (doctor's advice, the Gradescope image;
# course.py keeps its own copy: it runs before coursekit is installed)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(name: str | torch.device | None = "auto", *, arg: str = "device"
               ) -> torch.device:
    """Return the torch device to compute on.

    ``"auto"`` (or ``None``) picks CUDA, then Apple's MPS, then the CPU. An
    explicit choice (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a
    ``torch.device``) is checked and returned; asking for a device this machine
    does not have raises ``ValueError`` that says what is available. ``arg`` is
    the argument's name used in error messages (functions with a ``device=``
    argument pass theirs).

    The environment variable ``COURSEKIT_DEVICE`` overrides ``"auto"`` (useful
    to force the CPU on a machine with a busy GPU); a value it cannot use is
    reported as that variable's error.
    """
    if name is None or (isinstance(name, str) and name == "auto"):
        env = os.environ.get("COURSEKIT_DEVICE", "").strip()
        if env and env != "auto":
            return get_device(env, arg=f"environment variable COURSEKIT_DEVICE={env}")
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = ", ".join(available_devices())
    if isinstance(name, torch.device):
        device = name
    elif isinstance(name, str):
        try:
            device = torch.device(name)
        except RuntimeError:
            device = None
        if device is None or device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(
                f"{arg}: expected one of {DEVICE_CHOICES} (or 'cuda:N'), got {name!r}; "
                f"this machine has: {available}"
            ) from None
    else:
        raise TypeError(f"{arg}: expected a str or torch.device such as 'cpu' or 'auto', "
                        f"got {type(name).__name__}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{arg}: 'cuda' was requested but CUDA is not available here "
                f"(available: {available}); use 'auto' or 'cpu'"
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"{arg}: {name!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif device.type == "mps" and not _mps_available():
        raise ValueError(
            f"{arg}: 'mps' was requested but Apple's MPS backend is not available here "
            f"(available: {available})"
        )
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{arg}: expected one of {DEVICE_CHOICES}, got {name!r}; "
                         f"this machine has: {available}")
    return device


def available_devices() -> list[str]:
    """Names of the devices this machine can compute on, best first."""
    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Returns the seed so that notebooks can write ``seed = seed_everything(0)``.
    Exact bitwise reproducibility on GPUs also needs deterministic kernels,
    which this does not switch on (they are slower).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


@contextlib.contextmanager
def one_torch_thread():
    """Within the block torch uses one thread (the count is restored afterwards): small
    networks run fastest that way, and work that shares a busy CPU (a widget's redraw,
    parallel graders) does not fight over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def budget(cpu, gpu=None, device: str | torch.device | None = "auto"):
    """Pick a setting by device: ``cpu`` on the CPU (and MPS), ``gpu`` on CUDA.

    Notebooks size their runs with it, e.g. ``epochs = budget(cpu=20, gpu=200)``,
    so the default run fits the 3-minute CPU budget and a GPU does more.
    ``COURSEKIT_BUDGET=cpu`` forces the CPU settings everywhere.
    """
    if gpu is None or os.environ.get("COURSEKIT_BUDGET", "").lower() == "cpu":
        return cpu
    return gpu if get_device(device).type == "cuda" else cpu


def make_generator(seed: int | torch.Generator | None, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed (``None`` draws a fresh random seed).

    Passing a generator returns it unchanged, so functions can accept either.
    """
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative int, a torch.Generator or None, "
                             f"got {seed!r}")
        gen.manual_seed(int(seed))
    return gen


def module_dtype_device(module: torch.nn.Module, default_device: str | torch.device = "cpu"
                        ) -> tuple[torch.dtype, torch.device]:
    """Where ``module`` computes: the dtype and device of its first floating parameter or
    buffer; without one (a flow of permutations, an empty model), torch's default dtype on
    ``default_device``. Inputs are moved there before a model uses them."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device(default_device)
