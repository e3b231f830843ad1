"""``fit`` and ``evaluate``: one model, one loss, one optimiser, on top of :class:`Trainer`.

``fit`` minimises ``loss_fn(model, batch)`` with Adam (or a given optimiser);
``loss_fn`` returns either a scalar tensor or a dict with a scalar ``"loss"``
plus any other scalars to log (for a VAE: ``{"loss": nelbo, "kl": kl, "rec": rec}``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from coursekit._validation import check_count, check_number
from coursekit.runtime import get_device
from coursekit.train.data import as_batches, batch_length, check_batch, to_device
from coursekit.train.history import History
from coursekit.train.loop import Trainer, check_finite, optimizer_step


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
    """Mean of ``loss_fn``'s logged values over ``data`` (weighted by batch size).

    ``data`` is read like ``fit``'s ``train_data`` (not shuffled) and must be finite.
    """
    device = device or _model_device(model)
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    batches, check_each = as_batches(data, "data", batch_size, False, None)
    for position, batch in enumerate(batches):
        if check_each:
            check_batch(batch, "data", position)
        batch = to_device(batch, device)
        size = batch_length(batch)
        for k, v in _scalars(loss_fn(model, batch)).items():
            totals[k] = totals.get(k, 0.0) + float(v) * size
        count += size
    model.train(was_training)
    return {k: v / max(count, 1) for k, v in totals.items()}


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
        train_data: a tensor (batched and shuffled here), a tuple ``(x, y)`` of
            tensors with equal first dimension (batched together: ``batch = [x_b, y_b]``),
            a ``Dataset``, or any iterable of batches such as a ``DataLoader``.
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
    _check_fit_args(epochs, batch_size, clip_grad_norm, lr, optimizer)
    if val_data is not None:
        as_batches(val_data, "val_data", 1, False, None)  # its type and values, before training
    if device is not None:
        model.to(get_device(device))
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)

    def step(trainer: Trainer, batch) -> dict[str, torch.Tensor]:
        logged = _scalars(loss_fn(model, batch))
        check_finite("loss", float(logged["loss"].detach()), trainer.epoch, trainer.step)
        optimizer_step(optimizer, logged["loss"], clip_grad_norm=clip_grad_norm,
                       parameters=model.parameters())
        return logged

    trainer = Trainer(step, train_data, models={"model": model},
                      optimizers={"optimizer": optimizer},
                      schedulers={} if scheduler is None else {"scheduler": scheduler},
                      batch_size=batch_size, seed=seed, progress=progress, desc=desc)
    if val_data is not None:
        trainer.every(1, lambda t: evaluate(model, loss_fn, val_data, device=t.device),
                      unit="epoch")
    if callback is not None:
        trainer.every(1, lambda t: t.stop() if callback(t.epoch - 1, t.history) else None,
                      unit="epoch")
    return trainer.run(epochs=epochs)


def _check_fit_args(epochs, batch_size, clip_grad_norm, lr, optimizer) -> None:
    check_count(epochs, "epochs")
    if optimizer is None:  # lr is only used to build the default Adam
        check_number(lr, "lr", low=0.0, strict=True)
    check_count(batch_size, "batch_size")
    if clip_grad_norm is not None:
        check_number(clip_grad_norm, "clip_grad_norm", low=0.0, strict=True)
