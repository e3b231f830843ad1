"""Random-number-generator states and checkpoint files for :class:`~coursekit.train.Trainer`."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def rng_state(loader_generator: torch.Generator | None) -> dict:
    """The states of Python's, NumPy's and torch's (CPU, CUDA) RNGs and of the data shuffler."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": None if loader_generator is None else loader_generator.get_state(),
    }


def set_rng_state(state: dict, loader_generator: torch.Generator | None) -> None:
    """Restore what :func:`rng_state` returned."""
    if (state["loader"] is None) != (loader_generator is None):
        saved = "not " if state["loader"] is None else ""
        raise ValueError(f"seed: the checkpoint's data shuffling was {saved}seeded; build the "
                         "Trainer's data and seed as when it was saved to resume it")
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():  # a GPU run resumed on the CPU keeps only its CPU streams
        for device, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device)
    if loader_generator is not None:
        loader_generator.set_state(state["loader"])


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location=None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Tensors go back to the devices they were saved from unless ``map_location``
    (as in ``torch.load``, e.g. ``"cpu"``) says otherwise. The file is unpickled
    in full (user state may hold any object): load only your own files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {str(path)!r}")
    return torch.load(path, map_location=map_location, weights_only=False)
