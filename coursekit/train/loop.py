"""The general training loop: the user's step function optimises, :class:`Trainer` does the rest.

A step function receives the trainer and one batch (already on ``trainer.device``),
updates whatever it wants with whichever optimisers it wants, and returns a dict
of named scalars to log (or None). A WGAN with ``n_critic`` critic steps per
generator step::

    def gan_step(trainer, x):
        critic_loss = critic(gen.sample(len(x))).mean() - critic(x).mean()
        optimizer_step(trainer.optimizers["critic"], critic_loss)
        logged = {"critic": critic_loss}
        if trainer.step % n_critic == n_critic - 1:   # trainer.step: steps done before this one
            gen_loss = -critic(gen.sample(len(x))).mean()
            optimizer_step(trainer.optimizers["gen"], gen_loss)
            logged["gen"] = gen_loss
        return logged

    trainer = Trainer(gan_step, x_train, models={"critic": critic, "gen": gen},
                      optimizers={"critic": opt_c, "gen": opt_g}, seed=0)
    trainer.every(500, lambda t: t.save("gan.pt"))
    history = trainer.run(steps=10_000)

:class:`Trainer` batches the data (:mod:`coursekit.train.data`), checks it for
NaN/infinity, moves batches to the device, logs the returned values in a
:class:`History`, stops with ``FloatingPointError`` when one becomes NaN/inf,
updates the registered :class:`EMA` s after every step, steps the LR schedulers
per step or per epoch, calls periodic callbacks, shows a ``tqdm.auto`` progress
bar, and saves/loads checkpoints from which a resumed run gives the same
History and weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit._validation import check_count, check_number
from coursekit.runtime import get_device, make_generator
from coursekit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from coursekit.train.data import as_batches, check_batch, to_device
from coursekit.train.ema import EMA
from coursekit.train.history import History

StepFn = Callable[["Trainer", Any], "Mapping[str, float | torch.Tensor] | None"]
_END = object()  # what _next_batch returns at the end of an epoch


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *,
                   clip_grad_norm: float | None = None, parameters: Iterable | None = None) -> None:
    """``zero_grad``, ``loss.backward()``, optional gradient clipping, ``optimizer.step()``.

    Args:
        optimizer: the optimiser to step.
        loss: a scalar tensor.
        clip_grad_norm: if given, rescale the gradients so that their global L2 norm
            ``‖g‖ = sqrt(Σ_i ‖g_i‖²)`` is at most this value.
        parameters: whose gradients are clipped (default: the optimiser's).
    """
    if clip_grad_norm is not None:
        check_number(clip_grad_norm, "clip_grad_norm", low=0.0, strict=True)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad_norm is not None:
        if parameters is None:
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
    optimizer.step()


def check_finite(name: str, value: float, epoch: int, step: int) -> None:
    """The NaN guard: ``FloatingPointError`` if a logged ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{name} became {value} at epoch {epoch}, step {step}; "
                                 "try a smaller lr or clip_grad_norm")


def _floats(values, source: str) -> dict[str, float]:
    """A step's or callback's ``{name: scalar}`` as Python floats."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise TypeError(f"{source}: expected a dict of scalars or None, "
                        f"got {type(values).__name__}")
    out = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise ValueError(f"{source}: expected scalars, got {key!r} of shape "
                             f"{tuple(value.shape)}")
        out[key] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return out


class Trainer:
    """Runs ``step_fn`` over batches of ``train_data`` and keeps everything a checkpoint needs.

    Args:
        step_fn: ``(trainer, batch) -> {"name": scalar, ...} | None``; does its own
            optimisation (see :func:`optimizer_step`). ``trainer.step`` is the number
            of steps done before this one, ``trainer.epoch`` the completed epochs.
        train_data: a tensor ``(n, ...)``, a tuple ``(x, y, ...)`` of tensors with equal
            first dimension, a ``Dataset``, or a ``DataLoader``/iterable of batches.
        models, optimizers, schedulers, ema: named objects to checkpoint (``state_dict``);
            models are put in train mode by :meth:`run`, each :class:`EMA` is updated
            after every step, schedulers are stepped every ``schedule_every``
            (``"step"`` or ``"epoch"``).
        state: a dict of extra user state (an EBM's replay buffer, ...) that the step
            function reads and replaces through ``trainer.state``; saved in checkpoints.
        batch_size, shuffle, seed: how tensors and Datasets are batched; ``seed`` seeds
            the shuffling (``None``: torch's global RNG).
        device: where batches go (default: the first model's device, else the CPU).
        progress, desc: the ``tqdm.auto`` progress bar.

    Checkpoints (:meth:`save`, :meth:`load`) resume exactly, mid-epoch too, when the
    data is shuffled by the trainer's ``seed``, by a ``DataLoader``'s own ``generator``
    or by torch's global RNG (the epoch's batches so far are replayed and skipped);
    data with other randomness of its own resumes with fresh draws.

    Attributes:
        history: the :class:`History` of every run so far.
        step, epoch: steps taken and epochs completed.
    """

    def __init__(self, step_fn: StepFn, train_data, *,
                 models: Mapping[str, nn.Module] | None = None,
                 optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
                 schedulers: Mapping[str, Any] | None = None, schedule_every: str = "epoch",
                 ema: Mapping[str, EMA] | None = None, state: dict | None = None,
                 batch_size: int = 128, shuffle: bool = True, seed: int | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 desc: str = "training"):
        if not callable(step_fn):
            raise TypeError(f"step_fn: expected a callable, got {type(step_fn).__name__}")
        if schedule_every not in ("step", "epoch"):
            raise ValueError(f"schedule_every: expected 'step' or 'epoch', got {schedule_every!r}")
        if state is not None and not isinstance(state, dict):
            raise TypeError(f"state: expected a dict or None, got {type(state).__name__}")
        self.step_fn = step_fn
        self.models, self.optimizers = dict(models or {}), dict(optimizers or {})
        self.schedulers, self.ema = dict(schedulers or {}), dict(ema or {})
        self.schedule_every = schedule_every
        self.state = {} if state is None else state
        self.device = self._device(device)
        self.batches, self._check_each = as_batches(
            train_data, "train_data", check_count(batch_size, "batch_size"), shuffle,
            None if seed is None else make_generator(seed))
        # what shuffles the data: our generator, a DataLoader's own one, else torch's global RNG
        shuffler = getattr(self.batches, "generator", None)
        self._shuffler = shuffler if isinstance(shuffler, torch.Generator) else None
        self.progress, self.desc = progress, desc
        self.history = History()
        self.epoch = 0
        self._position = 0  # batches taken in the current epoch
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._epoch_rng: dict | None = None  # RNG states when the current epoch began
        self._iterator = None
        self._callbacks: list[tuple[int, str, Callable]] = []
        self._stop = False
        self._bar = None

    def _device(self, device) -> torch.device:
        if device is not None:
            return get_device(device)
        for model in self.models.values():
            for p in model.parameters():
                return p.device
        return torch.device("cpu")

    @property
    def step(self) -> int:
        """Steps taken so far (``history.steps``)."""
        return self.history.steps

    def every(self, n: int, fn: Callable[[Trainer], Mapping | None], *, unit: str = "step"):
        """Call ``fn(trainer)`` after every ``n``-th step (``unit="step"``) or epoch.

        A returned dict of scalars is logged in ``history.val`` (with the step in
        ``history.val_steps``); ``trainer.stop()`` ends the run after this step.
        Returns ``self`` so calls chain.
        """
        if unit not in ("step", "epoch"):
            raise ValueError(f"unit: expected 'step' or 'epoch', got {unit!r}")
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        self._callbacks.append((check_count(n, "n"), unit, fn))
        return self

    def stop(self) -> None:
        """End the current :meth:`run` after the step or epoch being processed."""
        self._stop = True

    def run(self, *, steps: int | None = None, epochs: int | None = None) -> History:
        """Train until ``step == steps`` or ``epoch == epochs`` (totals, not increments).

        A resumed or re-run trainer continues from where it is, so ``run(steps=2000)``
        after loading a checkpoint taken at step 1000 does the remaining 1000 steps.
        """
        if (steps is None) == (epochs is None):
            raise ValueError(f"steps, epochs: expected exactly one of them, "
                             f"got steps={steps!r}, epochs={epochs!r}")
        if steps is not None:
            check_count(steps, "steps")
        else:
            check_count(epochs, "epochs")
        self._stop = False
        for model in self.models.values():
            model.train()
        start = time.perf_counter()
        self._bar = tqdm(total=self._total(steps, epochs), initial=self.step, desc=self.desc,
                         disable=not self.progress, leave=True)
        try:
            while not (self._stop or self._reached(steps, epochs)):
                batch = self._next_batch()
                if batch is _END:
                    self._end_epoch()
                else:
                    self._take_step(batch)
            if self._position and self._position == self._length():
                self._end_epoch()  # the target fell on the last batch of an epoch
        finally:
            self._bar.close()
            self.history.seconds += time.perf_counter() - start
        return self.history

    def _reached(self, steps, epochs) -> bool:
        return self.step >= steps if steps is not None else self.epoch >= epochs

    def _length(self) -> int | None:
        try:
            return len(self.batches)
        except TypeError:
            return None

    def _total(self, steps, epochs) -> int | None:
        per_epoch = self._length()
        return steps if steps is not None else (per_epoch * epochs if per_epoch else None)

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = self._open_epoch()
        batch = next(self._iterator, _END)
        if batch is not _END:
            self._position += 1
        return batch

    def _open_epoch(self):
        """A fresh iterator over the data; mid-epoch (after loading) replay the epoch so far."""
        if self._position == 0:
            self._epoch_rng = rng_state(self._shuffler)
            return iter(self.batches)
        now = rng_state(self._shuffler)
        set_rng_state(self._epoch_rng, self._shuffler)
        iterator = iter(self.batches)
        for _ in range(self._position):
            if next(iterator, _END) is _END:
                raise ValueError(f"train_data: has fewer batches per epoch than the "
                                 f"{self._position} taken when the checkpoint was saved")
        set_rng_state(now, self._shuffler)
        return iterator

    def _take_step(self, batch) -> None:
        if self._check_each:
            check_batch(batch, "train_data", self._position - 1, self.epoch)
        logged = _floats(self.step_fn(self, to_device(batch, self.device)), "step_fn")
        for key, value in logged.items():
            check_finite(key, value, self.epoch, self.step)
        self.history.steps += 1
        self.history.log_train(logged)
        for key, value in logged.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1
        for ema in self.ema.values():
            ema.update()
        if self.schedule_every == "step":
            self._step_schedulers()
        self._bar.update(1)
        if logged and (self.step % 10 == 0 or self._position == 1):
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in logged.items()}, epoch=self.epoch + 1)
        self._run_callbacks("step", self.step)

    def _end_epoch(self) -> None:
        if self._position == 0:
            raise ValueError(f"train_data: epoch {self.epoch} gave no batches (empty data, or a "
                             "one-shot iterator used up by an earlier pass; pass a list or a "
                             "DataLoader)")
        for key, total in self._sums.items():
            self.history.epochs.setdefault(key, []).append(total / self._counts[key])
        self.epoch += 1
        self._position, self._sums, self._counts, self._iterator = 0, {}, {}, None
        if self.schedule_every == "epoch":
            self._step_schedulers()
        self._run_callbacks("epoch", self.epoch)

    def _step_schedulers(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def _run_callbacks(self, unit: str, count: int) -> None:
        for n, when, fn in self._callbacks:
            if when == unit and count % n == 0:
                values = _floats(fn(self), "fn")
                self.history.log_val(values)
                if values:
                    self._bar.set_postfix({f"val {k}": f"{v:.4g}" for k, v in values.items()},
                                          epoch=self.epoch)

    def state_dict(self) -> dict:
        """Everything needed to resume: models, optimisers, schedulers, EMAs, user state,
        History, step/epoch/batch counters and RNG states."""
        return {
            "models": {k: m.state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": {k: e.state_dict() for k, e in self.ema.items()},
            "state": dict(self.state),
            "history": dataclasses.asdict(self.history),
            "counters": {"epoch": self.epoch, "position": self._position,
                         "sums": dict(self._sums), "counts": dict(self._counts)},
            "rng": rng_state(self._shuffler),
            "epoch_rng": self._epoch_rng,
        }

    def load_state_dict(self, checkpoint: dict) -> None:
        """Restore what :meth:`state_dict` returned into this trainer's objects."""
        for group in ("models", "optimizers", "schedulers", "ema"):
            mine, saved = getattr(self, group), checkpoint[group]
            if set(mine) != set(saved):
                raise ValueError(f"{group}: the checkpoint has {sorted(saved)}, "
                                 f"this trainer has {sorted(mine)}")
            for key, obj in mine.items():
                obj.load_state_dict(saved[key])
        self.state.clear()
        self.state.update(checkpoint["state"])
        self.history = History(**checkpoint["history"])
        counters = checkpoint["counters"]
        self.epoch, self._position = counters["epoch"], counters["position"]
        self._sums, self._counts = dict(counters["sums"]), dict(counters["counts"])
        self._epoch_rng, self._iterator = checkpoint["epoch_rng"], None
        set_rng_state(checkpoint["rng"], self._shuffler)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` (atomically: via a temporary file)."""
        save_checkpoint(self.state_dict(), path)

    def load(self, path: str | os.PathLike, map_location=None) -> Trainer:
        """Resume from a file written by :meth:`save` (``map_location="cpu"`` to resume a
        GPU run on the CPU); returns ``self``."""
        self.load_state_dict(load_checkpoint(path, map_location))
        return self
