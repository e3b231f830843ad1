"""A small training loop that every lecture reuses instead of hand-written loops.

``fit`` minimises ``loss_fn(model, batch)`` with Adam (or a given optimiser)
over a tensor, a ``Dataset`` or any iterable of batches; it moves batches to
the model's device, shows a ``tqdm.auto`` progress bar (a widget in Jupyter, a
text bar in a terminal; ``progress=False`` silences it), clips gradients if
asked, evaluates an optional validation set every epoch and returns a
:class:`History` with the curves.

``loss_fn`` returns either a scalar tensor or a dict with a scalar ``"loss"``
plus any other scalars to log (for a VAE: ``{"loss": nelbo, "kl": kl,
"rec": rec}``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from coursekit.runtime import make_generator


@dataclass
class History:
    """What happened during :func:`fit`.

    Attributes:
        train: per-step logged values, e.g. ``train["loss"]`` (one float per step).
        epochs: per-epoch mean of each logged training value.
        val: per-epoch validation values (empty without validation data).
        seconds: wall time of the whole fit.
        steps: number of optimiser steps taken.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0

    @property
    def loss(self) -> list[float]:
        """Per-step training loss."""
        return self.train.get("loss", [])

    def plot(self, ax=None, keys=("loss",)):
        """Training (per step, smoothed) and validation (per epoch) curves."""
        from coursekit.plotting import plot_history

        return plot_history(self, ax=ax, keys=keys)


def _as_batches(data, batch_size: int, shuffle: bool, generator) -> Iterable:
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
    if isinstance(data, Iterable):
        return data
    raise TypeError(
        "train_data: expected a Tensor, a Dataset, a DataLoader or an iterable of batches, "
        f"got {type(data).__name__}"
    )


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        moved = [_to_device(b, device) for b in batch]
        # a TensorDataset of one tensor yields 1-tuples: hand the tensor itself to loss_fn
        return moved[0] if len(moved) == 1 else type(batch)(moved)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _scalars(out) -> dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        out = {"loss": out}
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError("loss_fn: expected a scalar tensor or a dict with a 'loss' entry, "
                        f"got {type(out).__name__}")
    if out["loss"].ndim != 0:
        shape = tuple(out["loss"].shape)
        raise ValueError(f"loss_fn: the loss must be a scalar, got shape {shape}")
    return out


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: Callable, data, batch_size: int = 512,
             device=None) -> dict[str, float]:
    """Mean of ``loss_fn``'s logged values over ``data`` (weighted by batch size)."""
    device = device or _model_device(model)
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in _as_batches(data, batch_size, False, None):
        batch = _to_device(batch, device)
        size = _batch_size(batch)
        for k, v in _scalars(loss_fn(model, batch)).items():
            totals[k] = totals.get(k, 0.0) + float(v) * size
        count += size
    model.train(was_training)
    return {k: v / max(count, 1) for k, v in totals.items()}


def _batch_size(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


def fit(
    model: nn.Module,
    loss_fn: Callable,
    train_data,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    val_data=None,
    clip_grad_norm: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    seed: int | None = None,
    desc: str = "training",
    callback: Callable | None = None,
) -> History:
    """Train ``model`` by minimising ``loss_fn(model, batch)``.

    Args:
        model: an ``nn.Module``; moved to ``device`` if one is given (default:
            stays where it is).
        loss_fn: ``(model, batch) -> loss`` or ``-> {"loss": ..., "other": ...}``.
        train_data: a tensor (batched and shuffled here), a ``Dataset``, or any
            iterable of batches such as a ``DataLoader``.
        epochs, batch_size, lr: the usual; ``lr`` is used only when no
            ``optimizer`` is given (then Adam over ``model.parameters()``).
        scheduler: optional LR scheduler stepped once per epoch.
        val_data: optional; evaluated with :func:`evaluate` after each epoch.
        clip_grad_norm: clip the global gradient norm to this value.
        progress: show a progress bar (``tqdm.auto``).
        seed: seeds the shuffling of tensor/Dataset inputs.
        callback: called as ``callback(epoch, history)`` after each epoch; may
            return True to stop early.

    Returns:
        :class:`History` with per-step, per-epoch and validation curves.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm: expected a positive number or None, "
                         f"got {clip_grad_norm!r}")
    if device is not None:
        from coursekit.runtime import get_device

        model.to(get_device(device))
    device = _model_device(model)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    generator = make_generator(seed) if seed is not None else None
    batches = _as_batches(train_data, batch_size, True, generator)
    history = History()
    start = time.perf_counter()
    try:
        steps_per_epoch = len(batches)
    except TypeError:
        steps_per_epoch = None
    total = steps_per_epoch * epochs if steps_per_epoch else None
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=True)
    model.train()
    try:
        for epoch in range(epochs):
            sums: dict[str, float] = {}
            n_batches = 0
            for batch in batches:
                batch = _to_device(batch, device)
                logged = _scalars(loss_fn(model, batch))
                loss = logged["loss"]
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"loss became {loss_value} at epoch {epoch}, step {history.steps}; "
                        "try a smaller lr or clip_grad_norm"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                history.steps += 1
                n_batches += 1
                for k, v in logged.items():
                    value = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                    history.train.setdefault(k, []).append(value)
                    sums[k] = sums.get(k, 0.0) + value
                bar.update(1)
                if history.steps % 10 == 0 or n_batches == 1:
                    bar.set_postfix(loss=f"{loss_value:.4g}", epoch=epoch + 1)
            for k, v in sums.items():
                history.epochs.setdefault(k, []).append(v / max(n_batches, 1))
            if val_data is not None:
                for k, v in evaluate(model, loss_fn, val_data, device=device).items():
                    history.val.setdefault(k, []).append(v)
                bar.set_postfix(loss=f"{history.epochs['loss'][-1]:.4g}",
                                val=f"{history.val['loss'][-1]:.4g}", epoch=epoch + 1)
            if scheduler is not None:
                scheduler.step()
            if callback is not None and callback(epoch, history):
                break
    finally:
        bar.close()
        history.seconds = time.perf_counter() - start
    return history


def smooth(values: list[float], window: int | None = None) -> list[float]:
    """Moving average (window ~ 2% of the length) for noisy per-step curves."""
    if not values:
        return []
    window = window or max(1, int(math.ceil(len(values) / 50)))
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out
